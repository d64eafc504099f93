"""Helpers for tests that run a real server process of their own (redis-server, nats-server,
a stelar node): a free port on 127.0.0.1, and waiting for the line that says it is ready."""

from __future__ import annotations

import socket
import subprocess
import time

READY_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the caller binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(process: subprocess.Popen[str], marker: str, what: str) -> list[str]:
    """Read ``process``'s output until a line containing ``marker`` (bounded by READY_TIMEOUT);
    the lines read so far. ``what`` names the process in the error when it exits or is slow."""
    deadline = time.monotonic() + READY_TIMEOUT
    seen: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} exited before it was ready:\n{''.join(seen)}")
        seen.append(line)
        if marker in line:
            return seen
    raise RuntimeError(f"{what} not ready within {READY_TIMEOUT}s:\n{''.join(seen)}")
