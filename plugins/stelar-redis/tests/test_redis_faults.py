"""stelar-redis when Redis misbehaves, each case against a real redis-server: killed and
restarted on the same port, paused (SIGSTOP/SIGCONT), its pub/sub connections killed, slowed by
CLIENT PAUSE. In each: local delivery goes on, cross-node traffic fails fast and is counted,
health says degraded, the hooks tell the application, and everything comes back by itself.

The two nodes are servers in this process (so a test can await their hooks), each with its
own Redis connections, talking to clients over real TCP."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from cluster_nodes import FAST

from stelar_core import RateLimit, StelarServer
from stelar_core.testing import eventually
from stelar_core.testing.http import http_call as call

pytestmark = pytest.mark.one_loop


class Node:
    """A server on the test's Redis, with events for its degraded / restored hooks."""

    def __init__(self, redis_url: str, prefix: str, **options) -> None:
        self.degraded = asyncio.Event()
        self.restored = asyncio.Event()
        self.reasons: list[str] = []
        redis = {"url": redis_url, "prefix": prefix, **FAST, **options.pop("redis", {})}
        self.server = StelarServer(
            host="127.0.0.1",
            port=0,
            tcp_port=0,
            broker="redis",
            redis=redis,
            hooks={"on_degraded": self._degraded, "on_restored": self._restored},
            **options,
        )

    def _degraded(self, component, reason):
        self.reasons.append(reason)
        self.restored.clear()
        self.degraded.set()

    def _restored(self, component, seconds):
        self.degraded.clear()
        self.restored.set()

    @property
    def broker(self):
        return self.server.hub.fanout.broker

    async def health(self) -> tuple[int, dict]:
        status, _, body = await call(self.server.get_port("ws"), "/health")
        return status, json.loads(body)

    async def metrics(self) -> str:
        return (await call(self.server.get_port("ws"), "/metrics"))[2].decode()

    def failures(self) -> int:
        return self.server.get_stats().counters.get("broker_publish_failures", 0)


@pytest.fixture
async def cluster(redis_server, connect):
    """Two started nodes, a TCP client on each, both in room "r" and both nodes subscribed."""
    prefix = f"f{uuid.uuid4().hex[:8]}"
    nodes = [Node(redis_server.url, prefix), Node(redis_server.url, prefix)]
    for node in nodes:
        await node.server.start()
        await asyncio.wait_for(node.broker.subscribed.wait(), 5)
    clients = [await connect(node.server.addresses["tcp"][0]) for node in nodes]
    for client in clients:
        assert await client.client.join_room("r")
    await crosses(nodes, clients)
    yield nodes, clients
    for node in nodes:
        await node.server.stop()


async def crosses(nodes, clients, timeout: float = 10.0) -> None:
    """Node one's room message reaches node two's client (sent again until it does: right after
    a join or a reconnection the subscription may still be on its way)."""
    marker = uuid.uuid4().hex

    async def arrived():
        nodes[0].server.to("r", "probe", marker)
        return any(data == marker for _, data in clients[1].received)

    await eventually(arrived, timeout=timeout, what="cross-node delivery")


async def local_delivery_goes_on(nodes, clients) -> None:
    before = len(clients[0].received)
    nodes[0].server.to("r", "local", before)
    await clients[0].wait_for(before + 1)
    assert clients[0].received[-1] == ("local", before)


async def cross_node_fails_fast(nodes) -> None:
    before = nodes[0].failures()
    nodes[0].server.to("r", "lost", 1)
    await eventually(lambda: nodes[0].failures() > before, timeout=5, what="the failed publish counted")


async def degraded_everywhere(nodes, *, lasting: bool = True) -> None:
    """Every node said degraded through its hook; ``lasting``: while the fault lasts, health
    and metrics say so too (a killed pub/sub connection is back too soon to look)."""
    for node in nodes:
        await asyncio.wait_for(node.degraded.wait(), 10)
        if not lasting:
            continue
        status, body = await node.health()
        assert status == 200 and body["status"] == "degraded" and "redis" in body["degraded"]
        assert 'stelar_degraded{component="redis"} 1.0' in await node.metrics()


async def restored_everywhere(nodes, clients) -> None:
    for node in nodes:
        await asyncio.wait_for(node.restored.wait(), 15)
        assert (await node.health())[1]["status"] == "ok"
    await crosses(nodes, clients)
    await crosses(nodes[::-1], clients[::-1])


async def test_redis_killed_and_restarted(redis_server, cluster):
    nodes, clients = cluster
    redis_server.kill()
    await degraded_everywhere(nodes)
    await local_delivery_goes_on(nodes, clients)
    await cross_node_fails_fast(nodes)
    assert "stelar_broker_publish_failures_total" in await nodes[0].metrics()
    redis_server.start()  # same port, empty: the nodes register and write their state again
    await restored_everywhere(nodes, clients)
    # Each node writes its state again in its next write batch (reads are eventually consistent).
    expected = sorted(client.id for client in clients)
    await eventually(lambda: _members_are(nodes[0], "r", expected), what="every member written again")
    assert len((await nodes[1].server.cluster.get_stats()).nodes) == 2


async def _members_are(node, room, expected):
    return sorted(await node.server.cluster.get_room_members(room)) == expected


async def test_redis_paused_then_continued(redis_server, cluster):
    nodes, clients = cluster
    redis_server.pause()
    try:
        await degraded_everywhere(nodes)
        await local_delivery_goes_on(nodes, clients)
        await cross_node_fails_fast(nodes)
    finally:
        redis_server.resume()
    await restored_everywhere(nodes, clients)


async def test_pubsub_connections_killed(redis_server, cluster):
    nodes, clients = cluster
    killed = await redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed == 2
    await degraded_everywhere(nodes, lasting=False)
    assert all(any("pubsub" in reason for reason in node.reasons) for node in nodes)
    await restored_everywhere(nodes, clients)


async def test_redis_slow_with_client_pause(redis_server, cluster):
    nodes, clients = cluster
    await redis_server.command("CLIENT", "PAUSE", "1500", "ALL")
    await degraded_everywhere(nodes)
    await local_delivery_goes_on(nodes, clients)
    await restored_everywhere(nodes, clients)


@pytest.mark.parametrize("fail_open", [True, False])
async def test_limits_fail_open_or_closed_while_redis_is_away(redis_server, connect, fail_open):
    node = Node(
        redis_server.url,
        f"l{uuid.uuid4().hex[:8]}",
        rate_limiter="redis",
        ip_tracker="redis",
        rate_limit=RateLimit(100, 1.0),
        redis={"fail_open": fail_open},
    )
    await node.server.start()
    try:
        client = await connect(node.server.addresses["tcp"][0])
        tracker = node.server.hub.ip_tracker
        limiter = node.server.hub.limits.global_limiter
        # While Redis answers, both answer from it, whatever fail_open says.
        assert await tracker.check("10.0.0.1", 5) is True
        assert await limiter.check(client.id) is True
        redis_server.kill()
        await asyncio.wait_for(node.degraded.wait(), 10)
        assert await tracker.check("10.0.0.1", 5) is fail_open
        assert await limiter.check(client.id) is fail_open
        # This node's own count still refuses past the limit, open or not.
        assert await tracker.check("127.0.0.1", 1) is False
    finally:
        await node.server.stop()
