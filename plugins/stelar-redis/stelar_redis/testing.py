"""A test kit for stelar-redis: a real ``redis-server`` per test on a free port (that a test can
kill, restart and pause), and clients that record what they receive.

Opt in from a ``conftest.py`` (pytest and pytest-asyncio installed)::

    from stelar_redis.testing import connect, redis_server  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis

from stelar_core.plugin_api import StelarClient

REDIS_SERVER = shutil.which("redis-server")
READY_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(process: subprocess.Popen[str], marker: str, what: str) -> list[str]:
    """Read ``process``'s output until a line containing ``marker`` (bounded by READY_TIMEOUT)."""
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


class RedisProcess:
    """``redis-server`` on 127.0.0.1 with nothing kept on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(
                "redis-server is not installed: scripts/test installs it (apt-get install redis-server)"
            )
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_line(self.process, "Ready to accept connections", "redis-server")

    def kill(self) -> None:
        """SIGKILL: everything in it is lost, as in a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()  # type: ignore[union-attr]

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

    async def command(self, *args: Any) -> Any:
        """One command on a connection of its own (closed before returning)."""

        def run() -> Any:
            with redis.Redis.from_url(self.url, socket_timeout=5) as client:
                return client.execute_command(*args)

        return await asyncio.to_thread(run)


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A ``redis-server`` of this test's own (stopped after it)."""
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def connect() -> AsyncIterator[Callable[..., Awaitable[Recorder]]]:
    """``await connect(url)``: a connected Recorder, disconnected after the test."""
    made: list[Recorder] = []

    async def make(url: str, **options: Any) -> Recorder:
        recorder = Recorder(url, **options)
        made.append(recorder)
        return await recorder.connect()

    yield make
    for recorder in made:
        await recorder.client.disconnect()
    # Reference cycles of the test (handlers bound to recorders) are collected while this
    # test's event loop still runs, so their transports are finalized here and not in a later test.
    gc.collect()


class Recorder:
    """A StelarClient that keeps what it receives, with a way to await the n-th message."""

    def __init__(self, url: str, **options: Any) -> None:
        self.client = StelarClient(url, reconnection=False, **options)
        self.received: list[tuple[str, object]] = []
        self._changed = asyncio.Event()
        self.client.on_any(self._record)

    def _record(self, event: str, data: object) -> None:
        self.received.append((event, data))
        self._changed.set()

    async def connect(self) -> Recorder:
        await self.client.connect()
        return self

    @property
    def id(self) -> str:
        assert self.client.id is not None, "not connected"
        return self.client.id

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, object]]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.received

    async def do(self, action: str, **args: Any) -> Any:
        return await self.client.request("do", {"action": action, "args": args}, timeout=15)
