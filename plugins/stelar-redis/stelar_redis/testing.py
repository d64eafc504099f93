"""A test kit for stelar-redis: a real ``redis-server`` per test on a free port (that a test can
kill, restart and pause), and clients that record what they receive.

Opt in from a ``conftest.py`` (pytest and pytest-asyncio installed)::

    from stelar_redis.testing import connect, redis_server  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis

from stelar_core.plugin_api import StelarClient
from stelar_core.testing.processes import READY_TIMEOUT, ServerProcess, free_port, wait_for_line

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
CLUSTER_NODE_TIMEOUT_MS = 1000  # how soon a replica takes over from a primary that died


def free_cluster_port() -> int:
    """A free port whose cluster bus port (the port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class RedisProcess(ServerProcess):
    """``redis-server`` on 127.0.0.1 with nothing kept on disk (``arguments`` add to that)."""

    def __init__(self, port: int | None = None, arguments: tuple[str, ...] = ()) -> None:
        self.port = free_port() if port is None else port
        self.arguments = arguments

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
                *self.arguments,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_line(self.process, "Ready to accept connections", "redis-server")

    async def command(self, *args: Any) -> Any:
        """One command on a connection of its own (closed before returning)."""

        def run() -> Any:
            with redis.Redis.from_url(self.url, socket_timeout=5) as client:
                return client.execute_command(*args)

        return await asyncio.to_thread(run)


class RedisClusterProcesses:
    """A loopback Redis Cluster: ``primaries`` primaries with ``replicas`` replicas each, made
    by ``redis-cli --cluster create``; their cluster state lives in ``directory``."""

    def __init__(self, directory: str, primaries: int = 3, replicas: int = 1) -> None:
        self.replicas = replicas
        self.nodes: list[RedisProcess] = []
        for _ in range(primaries * (1 + replicas)):
            port = free_cluster_port()
            arguments = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"{directory}/nodes-{port}.conf",
                "--cluster-node-timeout",
                str(CLUSTER_NODE_TIMEOUT_MS),
                "--dir",
                directory,
            )
            self.nodes.append(RedisProcess(port, arguments))

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                f"{self.replicas}",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=READY_TIMEOUT,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}")
        self.wait_until_ok()

    def running(self) -> list[RedisProcess]:
        return [node for node in self.nodes if node.process is not None and node.process.poll() is None]

    def wait_until_ok(self, timeout: float = READY_TIMEOUT) -> None:
        """Until every running node says the cluster is ok and agrees who serves every slot,
        and every replica is in sync (bounded polling: a cluster announces this nowhere)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._settled():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster did not settle within {timeout}s")
            time.sleep(0.05)

    def _settled(self) -> bool:
        maps = set()
        for node in self.running():
            with redis.Redis(port=node.port, socket_timeout=1) as client:
                if b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    return False
                maps.add(
                    tuple(sorted((s[0], s[1], s[2][1]) for s in client.execute_command("CLUSTER", "SLOTS")))
                )
                info = client.info("replication")
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
        return len(maps) == 1

    def primary_of(self, key: str) -> RedisProcess:
        """The running node that serves ``key``'s slot."""
        slot = self.call(self.running()[0], "CLUSTER", "KEYSLOT", key)
        for start, end, (_, port, *_), *_ in self.call(self.running()[0], "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"no node serves slot {slot}")

    def primaries(self) -> list[RedisProcess]:
        return [node for node in self.running() if self.call(node, "ROLE")[0] == b"master"]

    def move_slot_of(self, key: str, target: RedisProcess) -> None:
        """Migrate ``key``'s slot, with its keys, to the primary ``target`` (as ``redis-cli
        --cluster reshard`` does, for one slot)."""
        source = self.primary_of(key)
        slot = self.call(source, "CLUSTER", "KEYSLOT", key)
        source_id, target_id = self.call(source, "CLUSTER", "MYID"), self.call(target, "CLUSTER", "MYID")
        self.call(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        self.call(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := self.call(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            self.call(source, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for node in self.primaries():
            self.call(node, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.wait_until_ok()

    def call(self, node: RedisProcess, *args: Any) -> Any:
        with redis.Redis(port=node.port, socket_timeout=5) as client:
            return client.execute_command(*args)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A ``redis-server`` of this test's own (stopped after it)."""
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A loopback Redis Cluster of three primaries with a replica each, shared by a module's
    tests (each cluster of stelar nodes under a prefix of its own); tests that take it apart
    use ``own_redis_cluster``."""
    cluster = RedisClusterProcesses(str(tmp_path_factory.mktemp("redis-cluster")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_redis_cluster(tmp_path: Any) -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of this test's own, to kill or reshard."""
    cluster = RedisClusterProcesses(str(tmp_path))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


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
