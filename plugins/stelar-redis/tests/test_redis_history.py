"""Room history in Redis, beyond what the conformance kit checks on every broker (positions,
recovery on any node, outages, a Redis restarted empty: test_redis_conformance.py): one script
per publish, and the reconnecting client that never misses a message across drops and nodes
(two node processes)."""

from __future__ import annotations

import asyncio
import gc
import random
import uuid

import pytest
from cluster_nodes import NodeProcess, start_in_process

from stelar_core import StelarClient, StelarServer
from stelar_core.plugin_api import FrameType, dump_json, encode_frame
from stelar_core.testing import connect_url, eventually
from stelar_core.testing.drops import drop_client_link

pytestmark = pytest.mark.one_loop

ROOMS = {"feed*": {"history_size": 5, "history_ttl": 60}}


@pytest.fixture
async def nodes(redis_server):
    """``await nodes(n)``: n in-process nodes (memory transport) with history rooms, on the
    test's Redis with a fresh prefix."""
    prefix = f"h{uuid.uuid4().hex[:8]}"
    servers: list[StelarServer] = []

    async def start(count: int, **options) -> list[StelarServer]:
        for _ in range(count):
            server = StelarServer(
                transports=["memory"],
                broker="redis",
                rooms=ROOMS,
                rate_limit=None,
                redis={"url": redis_server.url, "prefix": prefix},
                **options,
            )
            await server.start()
            await asyncio.wait_for(server.hub.fanout.broker.subscribed.wait(), 5)
            servers.append(server)
        return servers

    start.prefix = prefix
    yield start
    for server in servers:
        await server.stop()


async def test_one_publish_is_one_script_call(nodes, redis_server, stelar_client_factory):
    (one,) = await nodes(1)
    a = await stelar_client_factory(one)
    await a.join("feed")
    await redis_server.command("CONFIG", "RESETSTAT")
    for n in range(20):
        one.to("feed", "tick", n)
    for _ in range(20):
        await a.next_event()
    stats = await redis_server.command("INFO", "commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 20
    assert stats["cmdstat_xadd"]["calls"] == 20 and stats["cmdstat_publish"]["calls"] == 20
    assert await redis_server.command("XLEN", f"{nodes.prefix}:history:feed") == 5  # trimmed


# ------------------------------------------------------------------ real processes, real drops


@pytest.fixture
def node_processes(redis_server):
    started: list[NodeProcess] = []
    prefix = f"p{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        node = NodeProcess(redis_server.url, prefix, rooms={"feed": {"history_size": 1000}}, rate_limit=None)
        started.append(node.start())
    yield started
    for node in started:
        node.stop()


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_a_client_dropped_twenty_times_across_two_nodes_gets_every_message_once_in_order(
    node_processes, transport
):
    one, two = node_processes
    urls = [one.addresses[transport], two.addresses[transport]]
    publisher = StelarClient(one.addresses["tcp"])
    client = StelarClient(urls[0], reconnection=False)
    received: list[int] = []
    outcomes: list[tuple[str, object]] = []
    client.on("n", received.append)
    client.on("recovered", lambda info: outcomes.append(("recovered", info["replayed"])))
    client.on("not_recovered", lambda info: outcomes.append(("not_recovered", info["reason"])))
    rng = random.Random(2026)
    drops = set(rng.sample(range(1, 1000), 20))
    await publisher.connect()
    await client.connect()
    assert (await client.join_room("feed")).position.offset == 0
    dropped = 0
    try:
        for n in range(1, 1001):
            await publisher.request("do", {"action": "to", "args": {"room": "feed", "event": "n", "data": n}})
            if n in drops:
                drop_client_link(client)
                await eventually(lambda: not client.connected, what="the drop seen")
                dropped += 1
                client.url = urls[dropped % 2]  # back on the other node
                await client.connect()
                if rng.random() < 0.5:
                    drop_client_link(client)  # in the middle of the replay
                    await eventually(lambda: not client.connected, what="the drop seen")
                    await client.connect()
        await eventually(lambda: len(received) >= 1000, what="all 1000", timeout=20)
    finally:
        await client.disconnect()
        await publisher.disconnect()
        # The aborted links' transports are finalized now, in this test's loop, not in a later test.
        gc.collect()
    assert received == list(range(1, 1001))
    # Every rejoin answered was a recovery (a drop may come before the answer of one).
    assert len(outcomes) >= 10 and all(kind == "recovered" for kind, _ in outcomes), outcomes
    assert sum(replayed for _, replayed in outcomes) > 0


# ------------------------------------------------------------------ resuming on another node


@pytest.fixture
async def tcp_nodes(redis_server):
    servers = await start_in_process(redis_server.url, 2, rate_limit=None)
    yield servers
    for server in servers:
        await server.stop()


async def test_a_session_closed_on_one_node_is_resumed_on_another(tcp_nodes, redis_server):
    one, two = tcp_nodes
    runs = []
    for server in tcp_nodes:

        @server.use
        def user(ctx, next):
            ctx.set_metadata("user", ctx.auth.get("user"))
            next()

        @server.on_ack("work")
        def work(ctx):
            runs.append(ctx.data)
            one.hub.session(ctx.id).connection._stream().abort()  # the answer is lost with it
            return ctx.data * 10

    client = StelarClient(one.addresses["tcp"][0], reconnection=False, auth={"user": "ann"})
    await client.connect()
    first_id = client.id
    await client.join_room("lobby")
    asked = asyncio.ensure_future(client.request("work", 4, timeout=10))
    await eventually(lambda: not client.connected, what="the drop")
    await eventually(lambda: one.hub.session(first_id) is None, what="node one saw it go")
    client.url = two.addresses["tcp"][0]
    await client.connect()
    try:
        assert client.resumed and client.id == first_id
        assert await asked == 40 and runs == [4]  # answered from the shared record, not run again
        info = two.get_clients()[0]
        assert info.id == first_id and info.metadata == {"user": "ann"} and info.rooms == {"lobby"}
        assert two.get_stats().counters["answers_resent"] == 1
    finally:
        await client.disconnect()
    # A session is resumed once: the shared copy is gone.
    assert await redis_server.command("KEYS", f"{one.config.plugin('redis').prefix}:session:*") == []


async def test_a_wrong_token_finds_nothing_and_removes_nothing(tcp_nodes, redis_server):
    one, two = tcp_nodes
    client = await connect_url_raw(one)
    session_id, token = client.id, client.welcome["resume"]["token"]
    one.hub.session(session_id).connection._stream().abort()  # dropped, not closed
    await client.wait_closed()
    prefix = one.config.plugin("redis").prefix
    await eventually(lambda: _keys(redis_server, prefix), what="the session shared")
    intruder = await resume_raw(two, session_id, "not-the-token")
    assert intruder.welcome["id"] != session_id and "resumed" not in intruder.welcome
    assert len(await _keys(redis_server, prefix)) == 1  # still there for its own client
    owner = await resume_raw(two, session_id, token)
    assert owner.welcome["id"] == session_id and owner.welcome["resumed"] is True
    intruder.close()
    owner.close()


async def _keys(redis_server, prefix):
    return await redis_server.command("KEYS", f"{prefix}:session:*")


async def connect_url_raw(server):
    return await connect_url(server.addresses["tcp"][0])


async def resume_raw(server, session_id, token):
    client = await connect_url(server.addresses["tcp"][0], handshake=False)
    resume = {"id": session_id, "token": token, "waiting": []}
    client.send_raw(encode_frame(FrameType.CONNECT, "", dump_json({"auth": {}, "resume": resume})))
    await asyncio.wait_for(client.connected, 5)
    return client
