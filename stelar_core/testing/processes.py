"""Helpers for tests that run a real server process of their own (redis-server, nats-server,
a stelar node): a free port on 127.0.0.1, waiting for the line that says it is ready, and a base
for a process a test kills, pauses and resumes."""

from __future__ import annotations

import signal
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


class ServerProcess:
    """A server process a test starts (``start``, in a subclass) and then takes apart: killed
    (as in a crash), paused (hung, connections left open), resumed, stopped."""

    process: subprocess.Popen[str] | None = None

    def kill(self) -> None:
        """SIGKILL: everything in it is lost, as in a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.kill()
