"""stelar-redis on a Redis Cluster (three primaries with a replica each, on loopback): the broker
conformance suite, sharded pub/sub (one shard per message, a bounded number of pub/sub
connections), a slot migrated and a primary killed under running nodes, the exact per-IP limit
and the emitter."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from cluster_nodes import FAST, start_in_process

from stelar_core.plugin_api import NotConnected
from stelar_core.testing import eventually
from stelar_core.testing.broker_conformance import BrokerConformance
from stelar_redis import Emitter
from stelar_redis.keys import Keys
from stelar_redis.testing import own_redis_cluster, redis_cluster  # noqa: F401  (fixtures)

pytestmark = pytest.mark.one_loop


class ClusterBackend:
    """The whole Redis Cluster: killed (its data lost) and started again from its nodes' cluster
    configuration, or paused."""

    def __init__(self, cluster) -> None:
        self._cluster = cluster

    def stop(self) -> None:
        for node in self._cluster.nodes:
            node.kill()

    def start(self) -> None:
        for node in self._cluster.nodes:
            node.start()
        self._cluster.wait_until_ok()

    def pause(self) -> None:
        for node in self._cluster.nodes:
            node.pause()

    def resume(self) -> None:
        for node in self._cluster.nodes:
            node.resume()


class TestRedisClusterBroker(BrokerConformance):
    @pytest.fixture
    async def cluster(self, redis_cluster):  # noqa: F811
        servers = []

        async def make(count, **options):
            made = await start_in_process(
                redis_cluster.url, count, transports=["memory"], redis=FAST, **options
            )
            servers.extend(made)
            return made

        yield make
        for server in reversed(servers):
            await server.stop()

    @pytest.fixture
    def backend(self, redis_cluster):  # noqa: F811
        return ClusterBackend(redis_cluster)


# ---------------------------------------------------------------------- cluster-specific


@pytest.fixture
async def two_nodes(redis_cluster, connect):  # noqa: F811
    """``await two_nodes(cluster, room_on=...)``: two nodes (TCP) on ``cluster`` under a fresh
    prefix, a client of each in a room; the room's channel on the shard ``room_on`` picks."""
    started = []

    async def make(cluster, room_on=lambda shard, state: shard != state, **options):
        prefix = f"s{uuid.uuid4().hex[:8]}"
        keys = Keys(prefix, 64)
        state = cluster.primary_of(keys.nodes)
        room = next(
            f"room-{i}"
            for i in range(1000)
            if room_on(cluster.primary_of(keys.room_channel(f"room-{i}")), state)
        )
        servers = await start_in_process(cluster.url, 2, redis={**FAST, "prefix": prefix}, **options)
        started.extend(servers)
        clients = [await connect(server.addresses["tcp"][0]) for server in servers]
        for client in clients:
            assert await client.client.join_room(room)
        await crosses(servers, clients, room)
        return Setup(servers, clients, keys, room)

    yield make
    for server in reversed(started):
        await server.stop()


class Setup:
    def __init__(self, servers, clients, keys, room) -> None:
        self.servers, self.clients, self.keys, self.room = servers, clients, keys, room


async def crosses(servers, clients, room, timeout: float = 15.0) -> None:
    """A room message of each node reaches the other node's client (sent again until it does;
    then one more, awaited, so that no probe is still on its way: a sender's messages keep
    their order)."""
    for sender, receiver in ((servers[0], clients[1]), (servers[1], clients[0])):
        marker = uuid.uuid4().hex

        def arrived(sender=sender, receiver=receiver, marker=marker):
            sender.to(room, "probe", marker)
            return any(data == marker for _, data in receiver.received)

        await eventually(arrived, timeout=timeout, what="cross-node delivery")
        sender.to(room, "probe", "last")
        await eventually(lambda receiver=receiver: receiver.received[-1] == ("probe", "last"), what="settled")


def command_calls(cluster, node, command: str) -> int:
    stats = cluster.call(node, "INFO", "commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_room_message_touches_one_shard_and_no_classic_pubsub(redis_cluster, two_nodes):  # noqa: F811
    setup = await two_nodes(redis_cluster)
    room_shard = redis_cluster.primary_of(setup.keys.room_channel(setup.room))
    primaries = redis_cluster.primaries()

    def calls():
        return {
            node.port: (
                command_calls(redis_cluster, node, "spublish"),
                command_calls(redis_cluster, node, "publish"),
            )
            for node in primaries
        }

    before, count = calls(), 50
    receiver = setup.clients[1]
    already = len(receiver.received)
    for number in range(count):
        setup.servers[0].to(setup.room, "m", number)
    received = await receiver.wait_for(already + count)
    assert [data for event, data in received[already:] if event == "m"] == list(range(count))
    after = calls()
    state_shard = redis_cluster.primary_of(setup.keys.nodes)
    for node in primaries:
        spublish = after[node.port][0] - before[node.port][0]
        assert after[node.port][1] == before[node.port][1], "a classic PUBLISH reached the cluster"
        if node is room_shard:
            assert spublish == count
        elif node is not state_shard:  # (the state shard carries the liveness probes)
            assert spublish == 0


async def test_pub_sub_connections_are_one_per_shard_whatever_the_rooms(redis_cluster, connect):  # noqa: F811
    prefix = f"s{uuid.uuid4().hex[:8]}"
    (server,) = await start_in_process(
        redis_cluster.url,
        1,
        redis={**FAST, "prefix": prefix},
        max_rooms_per_client=200,
        rate_limit=None,
    )
    try:
        client = await connect(server.addresses["tcp"][0])
        rooms = [f"many-{i}" for i in range(200)]
        for room in rooms:
            assert await client.client.join_room(room)
        keys = Keys(prefix, 64)
        spread = {redis_cluster.primary_of(keys.room_channel(room)).port for room in rooms}
        assert len(spread) == 3, "200 rooms in 64 partitions land on every shard"

        def subscribers():
            found = []
            for node in redis_cluster.primaries():
                with redis.Redis(port=node.port, socket_timeout=5) as direct:
                    entries = direct.client_list()
                for entry in entries:
                    if int(entry["ssub"]):
                        found.append((node.port, int(entry["ssub"])))
            return found

        # Every room's subscription is live once the broker says so (confirmed by its shard).
        for room in rooms:
            ready = server.hub.fanout.broker.room_ready(room)
            if ready is not None:
                await ready
        connections = subscribers()
        assert sorted(port for port, _ in connections) == sorted(
            node.port for node in redis_cluster.primaries()
        )
        assert sum(channels for _, channels in connections) == len(rooms) + 2  # + everyone, this node
    finally:
        await server.stop()


def resubscribes(server) -> int:
    return server.get_stats().counters.get("broker_resubscribes", 0)


async def test_a_slot_migrated_under_running_nodes(redis_cluster, two_nodes):  # noqa: F811
    """The room's slot moves to another shard: that shard's old owner unsubscribes the nodes,
    which subscribe again where the slot now is (counted); the room works across nodes again."""
    setup = await two_nodes(redis_cluster)
    channel = setup.keys.room_channel(setup.room)
    source = redis_cluster.primary_of(channel)
    target = next(node for node in redis_cluster.primaries() if node is not source)
    before = [resubscribes(server) for server in setup.servers]
    redis_cluster.move_slot_of(channel, target)
    assert redis_cluster.primary_of(channel) is target
    await eventually(
        lambda: all(resubscribes(s) > b for s, b in zip(setup.servers, before, strict=True)),
        what="both nodes subscribed again",
    )
    await crosses(setup.servers, setup.clients, setup.room)
    assert not any(server.get_stats().degraded for server in setup.servers)


async def test_a_primary_killed_a_replica_takes_over(own_redis_cluster, two_nodes):  # noqa: F811
    """The primary of the cluster's state (and of the room) dies: every node is degraded (its
    own clients still served), a replica takes over, the nodes subscribe again where the slot
    map now says, are restored, and deliver across nodes again."""
    cluster = own_redis_cluster
    setup = await two_nodes(cluster, room_on=lambda shard, state: shard is state)
    before = [resubscribes(server) for server in setup.servers]
    cluster.primary_of(setup.keys.nodes).kill()
    await eventually(lambda: all(s.get_stats().degraded for s in setup.servers), what="degraded")
    local = setup.clients[0]
    already = len(local.received)
    setup.servers[0].to(setup.room, "local", 1)
    assert (await local.wait_for(already + 1))[-1] == ("local", 1)
    cluster.wait_until_ok(timeout=20)  # a replica was promoted
    await eventually(
        lambda: not any(s.get_stats().degraded for s in setup.servers), timeout=20, what="restored"
    )
    await crosses(setup.servers, setup.clients, setup.room)
    assert all(resubscribes(s) > b for s, b in zip(setup.servers, before, strict=True))


async def test_the_per_ip_limit_holds_for_parallel_connections_on_a_cluster(redis_cluster, connect):  # noqa: F811
    prefix = f"s{uuid.uuid4().hex[:8]}"
    servers = await start_in_process(
        redis_cluster.url,
        2,
        redis={**FAST, "prefix": prefix},
        ip_tracker="redis",
        max_connections_per_ip=4,
        rate_limit=None,
    )
    try:
        urls = [server.addresses["tcp"][0] for server in servers] * 4
        outcomes = await asyncio.gather(*(connect(url) for url in urls), return_exceptions=True)
        admitted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, NotConnected)]
        assert (len(admitted), len(refused)) == (4, 4), outcomes
    finally:
        for server in servers:
            await server.stop()


async def test_the_emitter_reaches_and_reads_a_cluster_on_redis_cluster(redis_cluster, two_nodes):  # noqa: F811
    setup = await two_nodes(redis_cluster)
    async with Emitter(redis_cluster.url, prefix=setup.keys.name) as emitter:
        counts = [len(client.received) for client in setup.clients]
        await emitter.to(setup.room, "from-emitter", {"n": 1})
        for client, count in zip(setup.clients, counts, strict=True):
            assert (await client.wait_for(count + 1))[-1] == ("from-emitter", {"n": 1})
        members = sorted(client.id for client in setup.clients)
        await eventually(
            lambda: _members_are(emitter, setup.room, members), what="the emitter reads both members"
        )
        assert await emitter.to_id(setup.clients[1].id, "direct", 2)
        assert (await setup.clients[1].wait_for(counts[1] + 2))[-1] == ("direct", 2)


async def _members_are(emitter, room, expected) -> bool:
    return await emitter.get_room_members(room) == expected
