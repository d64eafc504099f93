"""Shared rate limits and the shared per-IP connection count.

The limiter is one Lua script (GCRA, ``scripts.GCRA``) rather than the ``limits`` library:
``limits`` offers fixed and sliding windows but no token bucket, and stelar's limits are token
buckets (a burst of ``max_points``, refilled at ``max_points / window``); GCRA keeps exactly that
in one key per client and policy, updated atomically in one command, timed by the Redis clock.

When Redis cannot answer, both fail open (allow, judged by this node alone) or closed (refuse)
by the ``fail_open`` option.
"""

from __future__ import annotations

import contextlib

from stelar_core.plugin_api import DisconnectCode, ErrorCode, LimitReached, MemoryIPTracker, RateLimit
from stelar_redis.node import REDIS_FAILURES, RedisNode

# Entries remembered for ``size()``: the clients this node has asked about, bounded.
MAX_TRACKED = 100_000


class RedisRateLimiter:
    """One policy's buckets (``scope``: global, ``event:<name>`` or ``client:<id>``), shared by
    every node."""

    def __init__(self, node: RedisNode, limit: RateLimit, scope: str) -> None:
        self._node = node
        self._scope = scope
        self._interval_us = int(limit.window * 1_000_000 / limit.max_points)
        self._capacity = limit.max_points
        self._seen: dict[str, None] = {}

    async def check(self, key: str) -> bool:
        if key not in self._seen and len(self._seen) < MAX_TRACKED:
            self._seen[key] = None
        try:
            allowed = await self._node.scripts.gcra(
                keys=[self._node.keys.rate_limit(self._scope, key)], args=[self._interval_us, self._capacity]
            )
        except REDIS_FAILURES as exc:
            self._node.problem("commands", f"{type(exc).__name__}: {exc}")
            return bool(self._node.options.fail_open)
        return bool(allowed)

    async def reset(self, key: str) -> None:
        self._seen.pop(key, None)
        # If Redis cannot answer, the bucket expires by itself once it is full again.
        with contextlib.suppress(*REDIS_FAILURES):
            await self._node.client.delete(self._node.keys.rate_limit(self._scope, key))

    def cleanup(self) -> None:
        """Buckets expire in Redis once they are full again: nothing to sweep."""

    def size(self) -> int:
        return len(self._seen)


class RedisIPTracker:
    """Connections per IP on every node, exact: admitting a connection reserves its place in
    Redis in one script (every live node's count checked and this node's raised together), so
    parallel admissions on several nodes never overshoot; a closed connection gives its place
    back. This node's counts are also kept in memory (what a resync writes again after Redis
    lost them); a dead node's counts go with its registration. With ``cluster_max_connections``
    the same script holds the number of connections across every node under that limit."""

    def __init__(self, node: RedisNode) -> None:
        self._node = node
        self._local = MemoryIPTracker()
        # Places reserved in Redis by ``check`` whose connection ``add`` has not counted yet.
        self._reserved: dict[str, int] = {}

    async def check(self, ip: str, limit: int) -> bool:
        if self._local.count(ip) + self._reserved.get(ip, 0) >= limit:
            return False
        node = self._node
        most = node.options.cluster_max_connections or 0
        try:
            reserved, count, *scope = await node.scripts.reserve_ip(
                keys=[node.keys.nodes, node.keys.node_key(node.node_id, "ips")],
                args=[node.keys.prefix, node.node_id, ip, limit, most],
            )
        except REDIS_FAILURES as exc:
            node.problem("commands", f"{type(exc).__name__}: {exc}")
            return bool(node.options.fail_open)
        if scope:
            raise LimitReached(
                ErrorCode.SERVER_FULL,
                f"the cluster is full ({most} connections across its nodes)",
                DisconnectCode.TRY_AGAIN_LATER,
                active=int(count),
                limit=most,
                scope="cluster",
            )
        if reserved:
            self._reserved[ip] = self._reserved.get(ip, 0) + 1
        return bool(reserved)

    async def _elsewhere(self, ip: str) -> int:
        node = self._node
        counts = await node.scripts.read(
            keys=[node.keys.nodes], args=[node.keys.prefix, "ip", ip, node.node_id]
        )
        return sum(int(count) for count in counts)

    def add(self, ip: str) -> None:
        self._local.add(ip)
        count = self._local.count(ip)
        reserved = self._reserved.pop(ip, 0)
        if reserved > 1:
            self._reserved[ip] = reserved - 1
        if reserved:
            self._node.presence.record_ip_count(ip, count)  # the reservation counted it in Redis
        else:
            self._node.presence.set_ip_count(ip, count)  # admitted without Redis (fail_open)

    def remove(self, ip: str) -> None:
        self._local.remove(ip)
        release = (
            "EVALSHA",
            self._node.scripts.release_ip.sha,
            1,
            self._node.keys.node_key(self._node.node_id, "ips"),
            ip,
        )
        self._node.presence.record_ip_count(ip, self._local.count(ip), release)

    async def count(self, ip: str) -> int:
        """This IP's connections on every live node (this node's alone if Redis cannot answer)."""
        try:
            return self._local.count(ip) + await self._elsewhere(ip)
        except REDIS_FAILURES:
            return self._local.count(ip)
