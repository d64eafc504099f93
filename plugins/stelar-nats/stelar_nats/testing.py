"""A test kit for stelar-nats: a real ``nats-server`` per test on a free port, which a test can
kill, start again (empty) and pause.

Opt in from a ``conftest.py`` (pytest installed)::

    from stelar_nats.testing import nats_server  # noqa: F401  (fixture)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from stelar_core.testing.processes import ServerProcess, free_port, wait_for_line

# Debian installs it in /usr/sbin, which a non-root PATH may not hold.
NATS_SERVER = shutil.which("nats-server", path=os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin")))


class NatsProcess(ServerProcess):
    """``nats-server`` on 127.0.0.1, nothing kept (no JetStream store); ``arguments`` add to that."""

    def __init__(self, port: int | None = None, arguments: tuple[str, ...] = ()) -> None:
        self.port = free_port() if port is None else port
        self.arguments = arguments

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        if NATS_SERVER is None:
            raise RuntimeError(
                "nats-server is not installed: scripts/test installs it (apt-get install nats-server)"
            )
        self.process = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), *self.arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_line(self.process, "Server is ready", "nats-server")


@pytest.fixture
def nats_server() -> Iterator[NatsProcess]:
    """A ``nats-server`` of this test's own (stopped after it)."""
    server = NatsProcess()
    server.start()
    yield server
    server.stop()
