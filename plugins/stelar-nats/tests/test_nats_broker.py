"""stelar-nats against a real nats-server, with real clients over TCP: what crosses nodes, bad
options, garbage on the cluster's subjects, and a node killed without a goodbye."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats_nodes import FAST, NodeProcess, start_nodes

from stelar_core import StelarClient, StelarServer
from stelar_core.plugin_api import ConfigError, NotConnected
from stelar_core.testing import eventually
from stelar_nats.subjects import Subjects

pytestmark = pytest.mark.one_loop


@pytest.fixture
async def nodes(nats_server):
    started: list[StelarServer] = []
    clients: list[StelarClient] = []

    async def make(count: int, **options) -> list[StelarServer]:
        made = await start_nodes(nats_server.url, count, **options)
        started.extend(made)
        return made

    async def client(server: StelarServer) -> StelarClient:
        made = StelarClient(server.addresses["tcp"][0], reconnection=False)
        await made.connect()
        clients.append(made)
        return made

    make.client = client  # type: ignore[attr-defined]
    yield make
    for made in clients:
        await made.disconnect()
    for server in reversed(started):
        await server.stop()


def received(client: StelarClient, event: str) -> asyncio.Queue:
    queue: asyncio.Queue = asyncio.Queue()
    client.on(event, queue.put_nowait)
    return queue


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"servers": ["redis://h:1"]}, "expected a list of nats:// (or tls://, ws://, wss://) URLs"),
        ({"servers": []}, "expected a list of nats://"),
        ({"prefix": "two words"}, "expected NATS subject tokens"),
        ({"prefix": "a.>"}, "expected NATS subject tokens"),
        ({"heartbeat_interval": 2.0, "node_timeout": 1.0}, "must be longer than 'nats.heartbeat_interval'"),
        ({"tls_key": "key.pem"}, "'nats.tls_key' is given without 'nats.tls_cert'"),
        ({"max_pending": 0}, "nats.max_pending"),
    ],
)
async def test_bad_options_say_what_is_wrong(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        server = StelarServer(transports=["memory"], broker="nats", nats=options)
        await server.start()


async def test_rooms_requests_and_reads_cross_nodes_over_tcp(nodes):
    one, two = await nodes(2)
    ann, bob = await nodes.client(one), await nodes.client(two)
    news = received(ann, "news")
    assert (await ann.join_room("lobby")).ok
    two.to("lobby", "news", {"n": 1})
    assert await asyncio.wait_for(news.get(), 5) == {"n": 1}
    bob.on_ack("echo", lambda data: {"echo": data})
    await eventually(lambda: _listed(one, bob.id), what="bob listed on node one")
    assert await one.request(bob.id, "echo", 7, timeout=5) == {"echo": 7}
    assert await one.cluster.get_room_members("lobby") == [ann.id]
    await eventually(lambda: _rooms_are(two, ["lobby"]), what="node one's room in node two's read")
    await eventually(lambda: _connections_are(one, 2), what="both nodes' connections counted on one")
    await eventually(lambda: _connections_are(two, 2), what="both nodes' connections counted on two")


async def test_a_client_no_node_has_is_not_connected_at_once(nodes):
    one, _ = await nodes(2)
    with pytest.raises(NotConnected, match="no client 'nobody'"):
        await asyncio.wait_for(one.request("nobody", "echo", 1, timeout=30), 2)
    assert await one.cluster.to_id("nobody", "x", 1) is False
    assert await one.cluster.disconnect("nobody") is False


async def test_garbage_on_the_clusters_subjects_is_refused_and_counted(nodes, nats_server):
    one, two = await nodes(2)
    ann = await nodes.client(one)
    news = received(ann, "news")
    assert (await ann.join_room("lobby")).ok
    subjects = Subjects(one.get_config()["nats"]["prefix"])
    raw = await nats.connect(nats_server.url)
    try:
        for subject in (subjects.room("lobby"), subjects.all, subjects.nodes, subjects.client(ann.id)):
            await raw.publish(subject, b"\xff garbage")
            # An envelope of another stelar release: refused as well, not misread.
            await raw.publish(subject, b'\x00\x0f[9,"d","x",null]')
        await raw.flush()
    finally:
        await raw.close()
    await eventually(
        lambda: one.get_stats().counters.get("broker_invalid_envelopes", 0) == 8,
        what="eight refused envelopes counted",
    )
    two.to("lobby", "news", "still here")
    assert await asyncio.wait_for(news.get(), 5) == "still here"
    assert not one.get_stats().degraded and not two.get_stats().degraded


async def test_a_killed_node_leaves_the_cluster(nodes, nats_server):
    (one,) = await nodes(1)
    prefix = one.get_config()["nats"]["prefix"]
    node = NodeProcess(nats_server.url, prefix)
    try:
        other = StelarClient(node.tcp, reconnection=False)
        await other.connect()
        assert (await other.join_room("lobby")).ok
        await eventually(
            lambda: _members_are(one, "lobby", [other.id]), what="the other node's member listed"
        )
        await eventually(lambda: _node_count(one, 2), what="two nodes")
        node.kill()
        # No goodbye: the dead node is out of every read once its heartbeats stop counting.
        await eventually(lambda: _members_are(one, "lobby", []), what="its member gone")
        await eventually(lambda: _node_count(one, 1), timeout=FAST["node_timeout"] * 4, what="one node")
        await other.disconnect()
    finally:
        node.kill()


async def _listed(server: StelarServer, client_id: str) -> bool:
    return await server.cluster.get_client(client_id) is not None


async def _members_are(server: StelarServer, room: str, expected: list[str]) -> bool:
    return await server.cluster.get_room_members(room) == expected


async def _rooms_are(server: StelarServer, expected: list[str]) -> bool:
    return await server.cluster.get_rooms() == expected


async def _connections_are(server: StelarServer, count: int) -> bool:
    stats = await server.cluster.get_stats()
    return stats.node_count == 2 and stats.active_connections == count


async def _node_count(server: StelarServer, count: int) -> bool:
    return (await server.cluster.get_stats()).node_count == count
