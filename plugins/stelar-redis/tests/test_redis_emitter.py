"""The emitter: code that runs no server sends into a cluster through its Redis, and the clients
of every node get it as they get the server's messages (a real redis-server, two nodes)."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from cluster_nodes import start_in_process

from stelar_core import StelarClient
from stelar_core.testing import eventually
from stelar_redis import Emitter, SyncEmitter

pytestmark = pytest.mark.one_loop

ROOMS = {"feed": {"history_size": 10}}


@pytest.fixture
async def nodes(redis_server):
    servers = await start_in_process(redis_server.url, 2, rooms=ROOMS, redis={"prefix": "emit"})
    yield servers
    for server in servers:
        await server.stop()


async def listening(server, *rooms):
    client = StelarClient(server.addresses["tcp"][0], reconnection=False)
    inbox: asyncio.Queue = asyncio.Queue()
    client.on_any(lambda event, data: inbox.put_nowait((event, data)))
    await client.connect()
    for room in rooms:
        await client.join_room(room)
    return client, inbox


async def test_rooms_everyone_and_one_client_on_every_node(nodes, redis_server):
    one, two = nodes
    (ann, ann_inbox), (bob, bob_inbox) = await listening(one, "lobby"), await listening(two, "lobby")
    await eventually(lambda: _subscribed(redis_server, "emit:room:lobby", 2), what="both nodes listen")
    async with Emitter(redis_server.url, "emit", rooms=ROOMS) as emitter:
        await eventually(lambda: _rooms_written(emitter), what="both members written to Redis")
        assert await emitter.get_room_members("lobby") == sorted([ann.id, bob.id])
        await emitter.to("lobby", "news", {"n": 1}, exclude=ann.id)
        assert await asyncio.wait_for(bob_inbox.get(), 5) == ("news", {"n": 1})
        await emitter.broadcast("alert", "all")
        assert await asyncio.wait_for(ann_inbox.get(), 5) == ("alert", "all")
        assert await asyncio.wait_for(bob_inbox.get(), 5) == ("alert", "all")
        assert await emitter.to_id(bob.id, "private", 7) is True
        assert await asyncio.wait_for(bob_inbox.get(), 5) == ("private", 7)
        assert await emitter.to_id("nobody", "private", 7) is False
        assert ann_inbox.empty()  # excluded from the news, not sent the private one
        assert await emitter.disconnect(ann.id, 4000, "billing") is True
        await eventually(lambda: not ann.connected, what="ann disconnected")
    await bob.disconnect()


async def test_a_room_with_history_gets_positions_and_the_sync_flavour_works(nodes, redis_server):
    one, _ = nodes
    client = StelarClient(one.addresses["tcp"][0], reconnection=False)
    got: asyncio.Queue = asyncio.Queue()
    client.on("tick", got.put_nowait)
    await client.connect()
    epoch = (await client.join_room("feed")).position.epoch

    def from_a_worker():  # a Celery task, say: synchronous code in another thread
        with SyncEmitter(redis_server.url, "emit", rooms=ROOMS) as emitter:
            for n in range(3):
                emitter.to("feed", "tick", n)

    await asyncio.to_thread(from_a_worker)
    with SyncEmitter(redis_server.url, "emit") as reader:
        await eventually(lambda: reader.get_rooms() == ["feed"], what="the room read from Redis")
        assert reader.get_room_members("feed") == [client.id]
    assert [await asyncio.wait_for(got.get(), 5) for _ in range(3)] == [0, 1, 2]
    assert client.positions["feed"].epoch == epoch and client.positions["feed"].offset == 3
    await client.disconnect()


async def _subscribed(redis_server, channel, count):
    return int((await redis_server.command("PUBSUB", "NUMSUB", channel))[1]) >= count


async def _rooms_written(emitter):
    return await emitter.get_rooms() == ["lobby"] and len(await emitter.get_room_members("lobby")) == 2


PRESENCE_ROOMS = {"feed": {"history_size": 10}, "team:*": {"presence": True}}

# The emitter as a Django view or a Celery task uses it: a process of its own running no server.
SEPARATE_PROCESS = """
import asyncio, json, sys
from stelar_redis import Emitter, SyncEmitter

url, prefix, flavour, ann, bob = sys.argv[1:6]
rooms = {"feed": {"history_size": 10}}
if flavour == "sync":
    with SyncEmitter(url, prefix, rooms=rooms) as emitter:
        emitter.to("lobby", "news", {"from": "sync"}, exclude=ann)
        emitter.to("feed", "tick", 1)
        found = emitter.to_id(ann, "private", "sync")
        gone = emitter.disconnect(bob, 4001, "plan expired")
else:
    async def main():
        async with Emitter(url, prefix, rooms=rooms) as emitter:
            await emitter.to("lobby", "news", {"from": "async"}, exclude=ann)
            await emitter.to("feed", "tick", 1)
            found = await emitter.to_id(ann, "private", "async")
            gone = await emitter.disconnect(bob, 4001, "plan expired")
            return found, gone
    found, gone = asyncio.run(main())
print(json.dumps([found, gone]))
"""


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_an_emitter_in_another_process_reaches_both_transports_on_two_nodes(redis_server, flavour):
    one, two = await start_in_process(
        redis_server.url,
        2,
        rooms=ROOMS,
        redis={"prefix": f"proc{flavour}"},
        transports=["tcp", "ws"],
        port=0,
    )
    ann = StelarClient(one.addresses["ws"][0], reconnection=False)
    bob = StelarClient(two.addresses["tcp"][0], reconnection=False)
    cid = StelarClient(two.addresses["ws"][0], reconnection=False)
    inboxes = {}
    for client in (ann, bob, cid):
        inboxes[client] = asyncio.Queue()
        client.on_any(lambda event, data, inbox=inboxes[client]: inbox.put_nowait((event, data)))
        await client.connect()
        await client.join_room("lobby")
        await client.join_room("feed")
    closed = asyncio.get_running_loop().create_future()
    bob.on("disconnect", lambda info: closed.done() or closed.set_result((info["code"], info["reason"])))
    await eventually(lambda: _subscribed(redis_server, f"proc{flavour}:room:lobby", 2), what="both nodes")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SEPARATE_PROCESS,
        redis_server.url,
        f"proc{flavour}",
        flavour,
        ann.id,
        bob.id,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0 and json.loads(out) == [True, True]
    assert await asyncio.wait_for(inboxes[ann].get(), 5) == ("tick", 1)  # excluded from the news
    assert await asyncio.wait_for(inboxes[ann].get(), 5) == ("private", flavour)
    assert await asyncio.wait_for(inboxes[cid].get(), 5) == ("news", {"from": flavour})
    assert await asyncio.wait_for(inboxes[cid].get(), 5) == ("tick", 1)
    assert cid.positions["feed"].offset == 1  # positioned like the server's own publications
    assert await asyncio.wait_for(closed, 5) == (4001, "plan expired")
    for client in (ann, cid):
        await client.disconnect()
    for server in (one, two):
        await server.stop()


async def test_join_leave_and_reads_of_stats_presence_and_history(redis_server):
    one, two = await start_in_process(
        redis_server.url, 2, rooms=PRESENCE_ROOMS, redis={"prefix": "reads"}, presence_interval=0.05
    )
    ann = StelarClient(one.addresses["tcp"][0], reconnection=False)
    bob = StelarClient(two.addresses["tcp"][0], reconnection=False)
    got: asyncio.Queue = asyncio.Queue()
    bob.on("welcome-aboard", got.put_nowait)
    for client in (ann, bob):
        await client.connect()
    async with Emitter(redis_server.url, "reads", rooms=PRESENCE_ROOMS) as emitter:
        assert await emitter.join(bob.id, "team:red") is True
        assert await emitter.join(ann.id, "team:red") is True
        assert await emitter.join("nobody", "team:red") is False
        await eventually(lambda: two.get_room_members("team:red") == [bob.id], what="bob joined on his node")
        await eventually(lambda: one.get_room_members("team:red") == [ann.id], what="ann joined on hers")
        # The membership is a real one: the room's messages reach bob.
        await emitter.to("team:red", "welcome-aboard", "hi", exclude=ann.id)
        assert await asyncio.wait_for(got.get(), 5) == "hi"
        await eventually(
            lambda: _equal(emitter.get_presence("team:red"), {ann.id: None, bob.id: None}),
            what="presence of both, read from Redis",
        )
        await eventually(lambda: _stats_show(emitter, 2), what="both nodes' stats published")
        for n in range(3):
            await emitter.to("feed", "tick", n)
        page = await emitter.history("feed", since=1, limit=10)
        assert [(p["offset"], p["event"], p["data"]) for p in page["publications"]] == [
            (2, "tick", 1),
            (3, "tick", 2),
        ]
        assert page["position"]["offset"] == 3
        assert await emitter.history("lobby") is None  # keeps no history
        assert await emitter.leave(bob.id, "team:red") is True
        await eventually(lambda: two.get_room_members("team:red") == [], what="bob left")
    for client in (ann, bob):
        await client.disconnect()
    for server in (one, two):
        await server.stop()


async def _equal(read, expected):
    return await read == expected


async def _stats_show(emitter, connections):
    stats = await emitter.get_stats()
    return stats.active_connections == connections and stats.node_count == 2


async def test_an_emitter_reaches_only_the_cluster_of_its_prefix(nodes, redis_server):
    one, _ = nodes
    client, inbox = await listening(one, "lobby")
    await eventually(lambda: _subscribed(redis_server, "emit:room:lobby", 1), what="the node listens")
    async with Emitter(redis_server.url, "another-tenant") as stranger:
        assert await stranger.get_rooms() == [] and await stranger.get_room_members("lobby") == []
        assert await stranger.to_id(client.id, "private", 1) is False
        assert await stranger.disconnect(client.id) is False
        await stranger.to("lobby", "news", "not for you")
        await stranger.broadcast("alert", "not for you")
    async with Emitter(redis_server.url, "emit") as own:
        await own.to("lobby", "news", "for you")
    assert await asyncio.wait_for(inbox.get(), 5) == ("news", "for you")  # the first to arrive
    assert client.connected
    await client.disconnect()
