"""The emitter: code that runs no server sends into a cluster through its Redis, and the clients
of every node get it as they get the server's messages (a real redis-server, two nodes)."""

from __future__ import annotations

import asyncio

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
