"""Room history in Redis: positions shared by every node, recovery from any node, a new epoch
when Redis lost the stream, one script per publish; and the reconnecting client that never
misses a message across drops and nodes (two node processes)."""

from __future__ import annotations

import asyncio
import gc
import random
import uuid

import pytest
from cluster_nodes import NodeProcess, start_in_process

from stelar_core import StelarClient, StelarServer
from stelar_core.plugin_api import FrameType, Position, dump_json, encode_frame
from stelar_core.testing import connect_url, eventually

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


async def test_every_node_gives_one_room_one_sequence_of_positions(nodes, stelar_client_factory):
    one, two = await nodes(2)
    a, b = await stelar_client_factory(one), await stelar_client_factory(two)
    first = await a.join("feed")
    assert first["position"]["offset"] == 0  # before anything was published
    epoch = first["position"]["epoch"]
    assert (await b.join("feed"))["position"] == {"epoch": epoch, "offset": 0}
    for n in range(6):
        (one if n % 2 else two).to("feed", "tick", n)
    seen = []
    for client in (a, b):  # each node writes them in the order of their offsets
        got = [await client.next_event() for _ in range(6)]
        assert [e.position for e in got] == [Position(epoch, offset) for offset in range(1, 7)]
        seen.append([(e.data, e.position) for e in got])
    assert seen[0] == seen[1] and sorted(data for data, _ in seen[0]) == list(range(6))
    for node in (0, 1):  # a node's own publishes keep their order
        mine = [data for data, _ in seen[0] if data % 2 == node]
        assert mine == sorted(mine)


async def stored(redis_server, prefix: str, room: str, offset: int) -> None:
    """Wait until Redis holds ``room``'s publication ``offset`` (publishing is queued)."""

    async def there():
        return (
            int(await redis_server.command("HGET", f"{prefix}:history:{room}:meta", "offset") or 0) >= offset
        )

    await eventually(there, what=f"offset {offset} stored")


async def test_recovery_on_another_node_replays_what_was_missed(nodes, redis_server, stelar_client_factory):
    one, two = await nodes(2)
    a = await stelar_client_factory(one)
    epoch = (await a.join("feed"))["position"]["epoch"]
    one.to("feed", "tick", 1)
    await a.next_event()
    a.close()
    await a.wait_closed()
    for n in (2, 3, 4):
        one.to("feed", "tick", n)
    await stored(redis_server, nodes.prefix, "feed", 4)
    b = await stelar_client_factory(two)
    answer = await b.join("feed", since=Position(epoch, 1))
    assert answer == {"ok": True, "position": {"epoch": epoch, "offset": 4}, "recovered": True, "replayed": 3}
    assert [(await b.next_event()).data for _ in range(3)] == [2, 3, 4]
    one.to("feed", "tick", 5)
    assert (await b.next_event()).position == Position(epoch, 5)
    # Older than the 5 kept: not recovered, nothing replayed.
    for n in range(6, 12):
        one.to("feed", "tick", n)
    for _ in range(6):
        await b.next_event()
    await stored(redis_server, nodes.prefix, "feed", 11)
    answer = await b.join("feed", since=Position(epoch, 2))
    assert answer["recovered"] is False and answer["reason"] == "history_lost"
    assert two.get_stats().recoveries == {"recovered": 1, "history_lost": 1}


async def test_redis_restarted_empty_starts_a_new_epoch(nodes, redis_server, stelar_client_factory):
    (one,) = await nodes(1)
    a = await stelar_client_factory(one)
    epoch = (await a.join("feed"))["position"]["epoch"]
    one.to("feed", "tick", 1)
    assert (await a.next_event()).position == Position(epoch, 1)
    redis_server.kill()
    await eventually(lambda: one.get_stats().degraded, what="the loss seen")
    redis_server.start()
    broker = one.hub.fanout.broker
    await eventually(lambda: broker.subscribed.is_set() and one.get_stats().degraded == {}, what="back")
    answer = await a.join("feed", since=Position(epoch, 1))
    assert answer["recovered"] is False and answer["reason"] == "epoch_changed"
    new_epoch = answer["position"]["epoch"]
    assert new_epoch != epoch and answer["position"]["offset"] == 0
    one.to("feed", "tick", 2)
    assert (await a.next_event()).position == Position(new_epoch, 1)


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


async def test_while_redis_is_away_a_history_room_delivers_locally_without_positions(
    nodes, redis_server, stelar_client_factory
):
    (one,) = await nodes(1)
    a = await stelar_client_factory(one)
    await a.join("feed")
    redis_server.kill()
    await eventually(lambda: one.get_stats().degraded, what="degraded")
    one.to("feed", "tick", "during")
    event = await a.next_event()
    assert event.data == "during" and event.position is None
    assert one.get_stats().counters["history_unavailable"] == 1
    answer = await a.join("feed", since=Position("e", 0))
    assert answer["recovered"] is False and answer["reason"] == "unavailable"
    redis_server.start()


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


def abort(client: StelarClient) -> None:
    """Drop the client's connection the way a network does: no close frame, nothing flushed."""
    link = client._channel.link
    if link is not None:
        link.abort(1006, "dropped by the test")


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
                abort(client)
                await eventually(lambda: not client.connected, what="the drop seen")
                dropped += 1
                client.url = urls[dropped % 2]  # back on the other node
                await client.connect()
                if rng.random() < 0.5:
                    abort(client)  # in the middle of the replay
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
