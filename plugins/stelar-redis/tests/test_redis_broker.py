"""The Redis broker's own limits and bad input, against a real redis-server: options are
checked, an oversized message stays local, the publish queue is bounded, garbage on a channel
is counted and dropped while the node carries on."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from cluster_nodes import start_in_process

from stelar_core import ConfigError, RateLimit, StelarClient, StelarServer
from stelar_core.testing import eventually

pytestmark = pytest.mark.one_loop


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "http://127.0.0.1:6379"}, "expected a redis://, rediss://, unix:// or redis+cluster:// URL"),
        ({"url": "redis+cluster://127.0.0.1:7000,127.0.0.1"}, "expected host:port, comma separated"),
        ({"prefix": "has space"}, "expected a non-empty name without spaces or braces"),
        ({"prefix": "a{b}"}, "expected a non-empty name without spaces or braces"),
        ({"partitions": 0}, "redis.partitions"),
        ({"cluster_max_connections": 0}, "redis.cluster_max_connections"),
        ({"cluster_max_connections": 10}, "'redis.cluster_max_connections' needs ip_tracker = \"redis\""),
        ({"pool_size": 0}, "redis.pool_size"),
        ({"heartbeat_interval": 2.0, "node_timeout": 1.0}, "'redis.node_timeout' (1.0) must be longer"),
        ({"max_message_size": 10}, "redis.max_message_size"),
        ({"nope": 1}, "nope"),
    ],
)
def test_bad_options_say_what_is_wrong(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        StelarServer(transports=["memory"], broker="redis", redis=options)


def test_the_url_is_hidden_in_get_config():
    server = StelarServer(
        transports=["memory"], broker="redis", redis={"url": "redis://:secret@127.0.0.1:1/0"}
    )
    shown = server.get_config()["redis"]
    assert shown["url"] == "***" and shown["prefix"] == "stelar"


@pytest.fixture
async def pair(redis_server, stelar_client_factory):
    """Two in-process nodes (memory transport) on the test's Redis, a client on each in "r"."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    servers = []
    for _ in range(2):
        server = StelarServer(
            transports=["memory"],
            broker="redis",
            redis={"url": redis_server.url, "prefix": prefix, "max_message_size": 4096, "max_pending": 50},
        )
        await server.start()
        await asyncio.wait_for(server.hub.fanout.broker.subscribed.wait(), 5)
        servers.append(server)
    clients = [await stelar_client_factory(server) for server in servers]
    for client in clients:
        await client.join("r")
    yield servers, clients, prefix
    for server in servers:
        await server.stop()


async def cross(servers, clients):
    marker = uuid.uuid4().hex

    def arrived():
        servers[0].to("r", "probe", marker)
        return any(event.data == marker for event in clients[1].pending_events())

    await eventually(arrived, what="cross-node delivery")


async def next_event(client):
    """The next event other than the probes of ``cross``."""
    while (event := await client.next_event()).event == "probe":
        pass
    return event


async def test_a_message_over_max_message_size_is_delivered_locally_only(pair):
    servers, clients, _ = pair
    await cross(servers, clients)
    servers[0].to("r", "big", "x" * 5000)
    assert (await next_event(clients[0])).event == "big"
    assert servers[0].get_stats().counters["broker_publish_failures"] == 1
    servers[0].to("r", "small", 1)
    assert (await next_event(clients[1])).event == "small"  # the big one never got there


async def test_garbage_on_a_nodes_channel_is_counted_and_dropped(pair, redis_server):
    servers, clients, prefix = pair
    await cross(servers, clients)
    node = servers[1].cluster.node_id
    for garbage in (b"\xc1", b"not msgpack", b"\x93\x02\x05\xa1n"):
        await redis_server.command("PUBLISH", f"{prefix}:to:{node}", garbage)
    await redis_server.command("PUBLISH", f"{prefix}:room:r", b"\x91\x01")
    await eventually(lambda: servers[1].get_stats().counters.get("broker_invalid_envelopes") == 4)
    await cross(servers, clients)  # and it carries on


async def test_the_publish_queue_is_bounded(pair, redis_server):
    servers, clients, _ = pair
    await cross(servers, clients)
    redis_server.pause()  # the writer's batch now waits for a Redis that does not answer
    try:
        for n in range(500):
            servers[0].to("r", "flood", n)
        broker = servers[0].hub.fanout.broker
        assert len(broker._queue) <= 50
        await eventually(lambda: servers[0].get_stats().counters["broker_publish_failures"] >= 450)
        # Local delivery went on for every one of them.
        for n in range(500):
            assert (await next_event(clients[0])).data == n
    finally:
        redis_server.resume()


async def test_the_shared_limiter_is_a_token_bucket_per_scope(redis_server):
    """The GCRA script keeps the core's token-bucket semantics: a burst of max_points, then one
    point per window/max_points; scopes and keys are independent; reset refills."""
    server = StelarServer(
        transports=["memory"],
        rate_limiter="redis",
        rate_limit=RateLimit(3, 0.3),
        event_rate_limits={"chat": RateLimit(1, 60.0)},
        redis={"url": redis_server.url, "prefix": f"g{uuid.uuid4().hex[:8]}"},
    )
    await server.start()
    try:
        limits = server.hub.limits
        assert [await limits.check("c1", "any", "c1") for _ in range(4)] == [True, True, True, False]
        assert await limits.check("c2", "any", "c2") is True  # another key
        assert await limits.check("c1", "chat", "c1") is True  # another scope: the event's own
        assert await limits.check("c1", "chat", "c1") is False
        await eventually(lambda: limits.check("c1", "any", "c1"), timeout=5, what="a point back")
        await limits.global_limiter.reset("c1")
        assert [await limits.check("c1", "any", "c1") for _ in range(3)] == [True, True, True]
    finally:
        await server.stop()


async def test_no_join_window_a_message_after_join_room_reaches_a_nodes_first_member(redis_server):
    """A client's join_room returns only once its node receives the room: whatever any node
    publishes afterwards reaches it, also when it is the room's first member on its node, and
    also when the room's last member there has just left (the unsubscribe still on its way)."""
    # Right after start (the listener may still be subscribing), 100 joins: no rate limit.
    one, two = await start_in_process(redis_server.url, 2, rate_limit=None)
    client = StelarClient(two.addresses["tcp"][0], reconnection=False)
    got: asyncio.Queue = asyncio.Queue()
    client.on("hello", got.put_nowait)
    await client.connect()
    try:
        for n in range(100):
            room = f"window-{n // 2}"  # each room twice: joined, left, joined again at once
            await client.join_room(room)
            one.to(room, "hello", n)  # published on the other node right after the join returned
            assert await asyncio.wait_for(got.get(), 5) == n
            await client.leave_room(room)
    finally:
        await client.disconnect()
        for server in (one, two):
            await server.stop()


async def test_cluster_reads_show_metadata_as_it_is_now(redis_server):
    one, two = await start_in_process(redis_server.url, 2)
    one.on_ack("upgrade", lambda ctx: ctx.set_metadata("plan", ctx.data))
    client = StelarClient(one.addresses["tcp"][0], reconnection=False)
    await client.connect()
    try:
        assert await client.request("upgrade", "pro") is None
        await eventually(lambda: _plan_seen_from(two, client.id, "pro"), what="the new metadata in Redis")
        assert await client.request("upgrade", "team") is None
        await eventually(lambda: _plan_seen_from(two, client.id, "team"), what="changed again")
    finally:
        await client.disconnect()
        for server in (one, two):
            await server.stop()


async def _plan_seen_from(node, client_id, plan) -> bool:
    info = await node.cluster.get_client(client_id)
    return info is not None and info.metadata.get("plan") == plan
