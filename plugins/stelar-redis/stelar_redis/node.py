"""``RedisNode``: one server's membership of its cluster, shared by the Redis broker, rate
limiter and IP tracker of that server (a provider resource, started before them and stopped
after them).

It owns the command connections (a pool with short timeouts, so that a failing Redis fails
fast), registers the node with a heartbeat (the registration expires ``node_timeout`` after the
last one: that is how long a dead node stays visible), writes this node's presence, sweeps
nodes whose registration expired and reports whether Redis is reachable (``degraded``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

import msgpack
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from stelar_core.plugin_api import SUMMED, BrokerPort, NotConnected, Options, Problems
from stelar_redis.connection import async_client, is_cluster
from stelar_redis.keys import Keys
from stelar_redis.presence import Op, Presence
from stelar_redis.scripts import Scripts

COMPONENT = "redis"
SWEEP_LIMIT = 10  # dead nodes forgotten per heartbeat (each one's cleanup is one Lua call)
# What a command can fail with when Redis is away, slow or paused.
REDIS_FAILURES: tuple[type[BaseException], ...] = (
    RedisError,
    RedisClusterException,  # a Redis Cluster with no reachable node, or a slot no shard serves
    OSError,
    asyncio.TimeoutError,
)

# A node's published figures: what cluster-wide statistics add up, and what they show per node.
PUBLISHED_STATS = (
    *SUMMED,
    "total_rooms",
    "uptime_seconds",
    "memory_mb",
    "connections_by_transport",
    "degraded",
    "counters",
)


class ClusterUnavailable(NotConnected):
    """Redis cannot be reached: clients on other nodes are out of reach for now."""


def backoff_delays(first: float, most: float) -> Callable[[int], float]:
    """Exponential backoff with full jitter: attempt ``n`` waits a random time up to
    ``min(most, first * 2**n)`` (so that nodes do not all come back at the same instant)."""

    def delay(attempt: int) -> float:
        return random.uniform(0, min(most, first * 2 ** min(attempt, 30)))

    return delay


class RedisNode:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.node_id = uuid.uuid4().hex[:16]
        self.cluster = is_cluster(options.url, options.cluster)
        self.keys = Keys(options.prefix, options.partitions if self.cluster else None)
        self._node_keys = [self.keys.nodes, self.keys.dir]  # the keys the node scripts declare
        # Commands retry once, at once, on a broken connection (none on a timeout): after Redis
        # restarted, every pooled connection is stale and would fail once, flapping the health
        # to degraded and back. (The pub/sub connection reports its breaks: it is supervised.)
        # On a Redis Cluster, twice: a command sent to a shard that no longer has its slot comes
        # back MOVED, and the client sends it again where the refreshed slot map says.
        self.client = self.connect(
            retry=Retry(NoBackoff(), 2)
            if self.cluster
            else Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        )
        self.scripts = Scripts(self.client, self.keys.publish)
        self.presence = Presence(self.keys, self.node_id, options.max_pending, self.changed)
        self.log = logging.getLogger("stelar.redis")
        self.port: BrokerPort | None = None
        self.delay = backoff_delays(options.reconnect_delay, options.reconnect_max_delay)
        self._problems = Problems()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False  # see RedisBroker._closing
        self._failures = 0
        # Set each time a heartbeat succeeded (tests and the broker's probe wait on it).
        self.registered = asyncio.Event()
        # More of this node's state to write again when Redis lost it (its presence rooms...).
        self.resyncs: list[Callable[[], list[Op]]] = []

    def connect(self, **overrides: Any) -> Any:
        """A client of the configured Redis (a ``RedisCluster`` on a cluster). Commands fail at
        once rather than retry: a caller on the hub's path must not wait for a Redis that is not
        there."""
        options = self.options
        kwargs: dict[str, Any] = {
            "max_connections": options.pool_size,
            "socket_timeout": options.command_timeout,
            "socket_connect_timeout": options.connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        return async_client(options.url, self.cluster, **{**kwargs, **overrides})

    # ------------------------------------------------------------------ status

    @property
    def healthy(self) -> bool:
        return not self._problems

    def problem(self, where: str, reason: str | None) -> None:
        """Record (or clear, ``None``) a problem with ``where`` ("commands", "pubsub")."""
        if not self._problems.record(where, reason):
            return
        summary = self._problems.summary
        if self.port is not None:
            self.port.set_degraded(COMPONENT, summary)
        elif summary is not None:
            self.log.warning("redis degraded: %s", summary)

    def attach(self, port: BrokerPort) -> None:
        """The broker's port: status goes to the server's health and hooks, stats are published."""
        self.port = port
        self.log = port.logger("stelar.redis")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._closing = False
        self._tasks = [asyncio.ensure_future(self._heartbeats()), asyncio.ensure_future(self._writes())]
        await self.beat()

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self.scripts.leave(keys=self._node_keys, args=[self.keys.prefix, self.node_id])
        except REDIS_FAILURES as exc:
            self.log.info("could not leave the cluster cleanly (%s); it forgets this node by expiry", exc)
        await self.client.aclose()

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeats(self) -> None:
        while not self._closing:
            if self.healthy:
                self._failures = 0
                pause = self.options.heartbeat_interval
            else:
                pause = min(self.options.heartbeat_interval, self.delay(self._failures))
                self._failures += 1
            await asyncio.sleep(pause)
            await self.beat()

    async def beat(self) -> None:
        """Renew the registration (writing the whole state again if Redis had lost it) and
        sweep expired nodes; any failure marks the node degraded until one succeeds."""
        try:
            if self.presence.resync_needed:
                await self._resync()
            if not await self._heartbeat():
                self.log.info("node %s (re)registered in the cluster", self.node_id)
                await self._resync()
                await self._heartbeat()  # the resync cleared the published statistics
        except REDIS_FAILURES as exc:
            self.presence.lost()
            self.problem("commands", f"{type(exc).__name__}: {exc}")
            return
        self.problem("commands", None)
        self.registered.set()

    async def _heartbeat(self) -> bool:
        """Renew the registration; whether the node was registered before."""
        known = await self.scripts.heartbeat(
            keys=self._node_keys,
            args=[
                self.keys.prefix,
                self.node_id,
                int(self.options.node_timeout * 1000),
                self._stats(),
                SWEEP_LIMIT,
            ],
        )
        return bool(known)

    async def _resync(self) -> None:
        # A new registration may mean a Redis restarted empty: the scripts that are called in
        # pipelines (EVALSHA, never loaded on demand there) must be loaded first.
        await self.scripts.load(self.client)
        await self.scripts.clear(keys=self._node_keys, args=[self.keys.prefix, self.node_id])
        await self.execute([*self.presence.snapshot(), *(op for resync in self.resyncs for op in resync())])

    def _stats(self) -> bytes:
        if self.port is None:
            return b""
        stats = self.port.stats().to_dict()
        packed: bytes = msgpack.packb({name: stats[name] for name in PUBLISHED_STATS}, use_bin_type=True)
        return packed

    # ------------------------------------------------------------------ presence writes

    def changed(self) -> None:
        """Presence has writes pending: the writer sends them in the next batch."""
        self._wake.set()

    async def _writes(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            ops = self.presence.take()
            if not ops or not self.healthy:
                if ops:
                    self.presence.lost()
                continue
            try:
                await self.execute(ops)
            except REDIS_FAILURES as exc:
                self.presence.lost()
                self.problem("commands", f"{type(exc).__name__}: {exc}")

    async def execute(self, ops: list[Op]) -> list[Any]:
        """Run ``ops`` in one pipeline (one round trip); raises the first failure."""
        if not ops:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for op in ops:
                pipe.execute_command(*op)
            results: list[Any] = await pipe.execute()
            return results

    async def reload_scripts(self) -> bool:
        """Load the scripts again after NOSCRIPT (Redis restarted empty and this node has not
        re-registered yet); whether they are loaded."""
        try:
            await self.scripts.load(self.client)
        except REDIS_FAILURES as exc:
            self.log.info("loading scripts failed: %s", exc)
            return False
        return True
