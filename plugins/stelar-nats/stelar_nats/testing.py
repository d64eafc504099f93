"""A test kit for stelar-nats: a real ``nats-server`` per test on a free port, which a test can
kill, start again (empty) and pause.

Opt in from a ``conftest.py`` (pytest installed)::

    from stelar_nats.testing import nats_server  # noqa: F401  (fixture)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from stelar_core.testing.processes import ServerProcess, free_port, wait_for_line

# Debian installs it in /usr/sbin, which a non-root PATH may not hold.
NATS_SERVER = shutil.which("nats-server", path=os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin")))


class NatsProcess(ServerProcess):
    """``nats-server`` on 127.0.0.1 with JetStream (unless ``jetstream=False``), its store in a
    fresh directory each time it starts (so a restart is empty, as after a crash that lost it);
    ``arguments`` add to that."""

    def __init__(
        self, port: int | None = None, arguments: tuple[str, ...] = (), jetstream: bool = True
    ) -> None:
        self.port = free_port() if port is None else port
        self.arguments = arguments
        self.jetstream = jetstream
        self._store: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        if NATS_SERVER is None:
            raise RuntimeError(
                "nats-server is not installed: scripts/test installs it (apt-get install nats-server)"
            )
        if self._store is not None:
            self._store.cleanup()  # (started again after a kill: empty)
        self._store = tempfile.TemporaryDirectory(prefix="nats-store-")
        jetstream = ["-js", "-sd", self._store.name] if self.jetstream else []
        self.process = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), *jetstream, *self.arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_line(self.process, "Server is ready", "nats-server")

    def stop(self) -> None:
        super().stop()
        if self._store is not None:
            self._store.cleanup()
            self._store = None


@pytest.fixture
def nats_server() -> Iterator[NatsProcess]:
    """A ``nats-server`` of this test's own (stopped after it)."""
    server = NatsProcess()
    server.start()
    yield server
    server.stop()
