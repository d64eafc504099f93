"""The server API on two nodes sharing a real redis-server: a command about a client connected
to the other node reaches it, and reads cover both nodes."""

from __future__ import annotations

import asyncio

import pytest
from api_support import KEYS, api, client_of, result
from cluster_nodes import start_in_process

from stelar_core.testing import eventually

pytestmark = pytest.mark.one_loop


@pytest.fixture
async def nodes(redis_server):
    servers = await start_in_process(
        redis_server.url,
        2,
        transports=["tcp", "ws"],
        port=0,
        api={"enabled": True, "keys": KEYS},
        rooms={"feed": {"history_size": 5}, "team:*": {"presence": True}},
        presence_interval=0.05,
        redis={"prefix": "apis"},
    )
    yield servers
    for server in servers:
        await server.stop()


async def test_commands_reach_a_client_of_the_other_node(nodes):
    one, two = nodes
    port = one.get_port("ws")
    ann, bob = await client_of(one), await client_of(two)
    await result(port, "send", {"client": bob.id, "event": "private", "data": 1})
    assert await asyncio.wait_for(bob.inbox.get(), 5) == ("private", 1)
    await result(port, "join", {"client": bob.id, "room": "feed"})
    await result(port, "join", {"client": ann.id, "room": "feed"})
    await eventually(lambda: two.get_room_members("feed") == [bob.id], what="bob joined on his node")
    await eventually(lambda: _members_are(port, "feed", {ann.id, bob.id}), what="both members in Redis")
    await result(port, "publish", {"room": "feed", "event": "tick", "data": 1})
    assert await asyncio.wait_for(bob.inbox.get(), 5) == ("tick", 1)
    assert await asyncio.wait_for(ann.inbox.get(), 5) == ("tick", 1)
    info = await result(port, "info", {"client": bob.id})
    assert info["transport"] == "tcp" and info["rooms"] == ["feed"] and info["connected_at"] > 0
    page = await result(port, "history", {"room": "feed"})
    assert [(p["offset"], p["event"]) for p in page["publications"]] == [(1, "tick")]
    await eventually(lambda: _stats_count(port, 2), what="both nodes' stats")
    assert (await result(port, "rooms"))["rooms"] == ["feed"]
    await result(port, "leave", {"client": bob.id, "room": "feed"})
    await eventually(lambda: two.get_room_members("feed") == [], what="bob left")
    closed = asyncio.get_running_loop().create_future()
    bob.on("disconnect", lambda info: closed.done() or closed.set_result(info["code"]))
    await result(port, "disconnect", {"client": bob.id, "code": 4002})
    assert await asyncio.wait_for(closed, 5) == 4002
    status, _, answer = await api(port, "send", {"client": "ghost", "event": "e"})
    assert status == 404 and answer["error"]["code"] == "client_not_found"
    await ann.disconnect()


async def test_broadcasts_and_reads_cover_both_nodes(nodes):
    one, two = nodes
    port = two.get_port("ws")  # any node answers for the cluster
    ann, bob = await client_of(one, "team:red"), await client_of(two, "team:red")
    await eventually(lambda: _clients_total(port, 2), what="both clients listed")
    clients = await result(port, "clients")
    assert {client["id"] for client in clients["clients"]} == {ann.id, bob.id}
    await eventually(
        lambda: _presence_is(port, "team:red", {ann.id: None, bob.id: None}), what="presence of both"
    )
    await result(port, "broadcast", {"event": "alert", "data": "all", "exclude": [bob.id]})
    assert await asyncio.wait_for(ann.inbox.get(), 5) == ("alert", "all")
    await result(port, "publish", {"room": "team:red", "event": "marker"})
    assert await asyncio.wait_for(bob.inbox.get(), 5) == ("marker", None)  # bob was excluded before
    for client in (ann, bob):
        await client.disconnect()


async def _clients_total(port, total):
    return (await result(port, "clients"))["total"] == total


async def _presence_is(port, room, expected):
    return (await result(port, "presence", {"room": room}))["members"] == expected


async def _members_are(port, room, expected):
    return set((await result(port, "members", {"room": room}))["members"]) == expected


async def _stats_count(port, connections):
    stats = await result(port, "stats")
    return stats["node_count"] == 2 and stats["totals"]["active_connections"] == connections
