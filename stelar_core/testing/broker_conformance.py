"""The broker conformance suite: what every stelar broker must do, as pytest tests.

A broker's author subclasses :class:`BrokerConformance` in a test module and gives the
``cluster`` fixture: ``await cluster(count, **options)`` returns ``count`` started servers on
the memory transport that share one cluster through the broker under test (their own process
or not); the fixtures of ``stelar_core.testing.pytest_plugin`` must be enabled::

    from stelar_core.testing.broker_conformance import BrokerConformance

    class TestMyBroker(BrokerConformance):
        @pytest.fixture
        async def cluster(self, my_backend):
            servers = []

            async def make(count, **options):
                for _ in range(count):
                    server = StelarServer(transports=["memory"], broker="mine", mine={...}, **options)
                    await server.start()
                    servers.append(server)
                return servers[-count:]

            yield make
            for server in servers:
                await server.stop()

Every broker runs: a room's messages reach its members on every node exactly once and, per
sender, in order; broadcasts with ``exclude``; ``to_id`` to a client of another node; and no
join window (a message published anywhere right after ``join_room`` returned reaches the new
member, the first of its node). A broker that joins nodes (:class:`~stelar_core.providers.
ClusterBroker`) also runs: requests, disconnects, joins and leaves of a client of another node,
and the cluster-wide reads. A broker with a history store runs the history tests: positions
agree on every node while both publish into one room at once, a client recovers on another
node, and one missing more than the history holds is told so; a broker sharing presence, that
every node reads the same members; a broker with a ``backend`` (fixture), that an outage (and
a hung backend, when it can be paused) degrades every node, which serves its own clients, and
that they heal when it is back, and with history that a room then delivers locally without
positions and that a backend restarted empty starts new epochs.
stelar's in-process bus, stelar-redis (one Redis and a Redis Cluster) and stelar-nats run it
(``tests/test_broker_conformance.py``, ``plugins/stelar-redis/tests/test_redis_conformance.py``,
``test_redis_sharded.py``, ``plugins/stelar-nats/tests/test_nats_conformance.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pytest

from stelar_core.errors import ConfigError
from stelar_core.protocol.publications import Position
from stelar_core.providers import ClusterBroker, HistoryStore, MaybeAwaitable, PresenceStore, resolve
from stelar_core.server import StelarServer
from stelar_core.testing.client import ReceivedEvent, TestClient, connect_client
from stelar_core.testing.waiting import eventually

Cluster = Callable[..., Awaitable[list[StelarServer]]]
MESSAGES = 100
# Seconds within which a client's new metadata shows in other nodes' reads (the documented bound).
METADATA_DELAY = 2.0


def _cluster_broker(server: StelarServer) -> bool:
    return isinstance(server.hub.broker, ClusterBroker)


def _shares_presence(server: StelarServer) -> bool:
    return isinstance(getattr(server.hub.broker, "presence", None), PresenceStore)


def _keeps_history(server: StelarServer) -> bool:
    return isinstance(getattr(server.hub.broker, "history", None), HistoryStore)


async def members(servers: list[StelarServer], room: str | None = None) -> list[TestClient]:
    """One client on each node, in ``room`` when given."""
    clients = [await connect_client(server, "memory") for server in servers]
    if room is not None:
        for client in clients:
            answer = await client.join(room)
            assert answer.get("ok") is not None, answer
    return clients


def ident(client: TestClient) -> str:
    assert client.id is not None, "not connected"
    return client.id


def position(event: ReceivedEvent) -> Position:
    assert event.position is not None, f"{event!r} has no position"
    return event.position


async def reachable(server: StelarServer, client: TestClient) -> None:
    """Until ``server`` can reach ``client`` of another node: at once on an in-process bus; on
    a cluster broker once the cluster lists the client (its directory entry is written behind
    the handshake: the contract is "reachable once listed", not "at the welcome")."""
    if _cluster_broker(server):
        view = server.cluster
        await eventually(
            lambda: _listed(view, ident(client)), what=f"client {ident(client)} listed by the cluster"
        )


async def _listed(view: Any, client_id: str) -> bool:
    return await view.get_client(client_id) is not None


async def received(client: TestClient, count: int) -> list[Any]:
    return [(await client.next_event()).data for _ in range(count)]


async def nothing_more(client: TestClient, server: StelarServer) -> None:
    """No duplicate or stray delivery: a marker sent to the client now is its next event."""
    marker = f"marker-{id(client)}"
    server.to_id(ident(client), "marker", marker)
    event = await client.next_event()
    assert (event.event, event.data) == ("marker", marker), f"unexpected {event!r} before the marker"


class Backend(Protocol):
    """What the broker depends on, for the fault tests: ``stop()`` takes it away (killed),
    ``start()`` brings it back, empty; each plain or async. A backend that can also hang
    without closing its connections (a paused process) adds ``pause()`` and ``resume()``."""

    def stop(self) -> MaybeAwaitable[None]: ...

    def start(self) -> MaybeAwaitable[None]: ...


class ProcessBackend:
    """A :class:`Backend` that is one server process (``stelar_core.testing.processes.
    ServerProcess`` with a ``start()``): stopped is killed (SIGKILL), started again empty,
    paused with SIGSTOP."""

    def __init__(self, process: Any) -> None:
        self._process = process

    def stop(self) -> None:
        self._process.kill()

    def start(self) -> None:
        self._process.start()

    def pause(self) -> None:
        self._process.pause()

    def resume(self) -> None:
        self._process.resume()


class BrokerConformance:
    """Subclass it (its name must start with ``Test``) and give the ``cluster`` fixture (and
    ``backend``, for a broker that depends on a server of its own)."""

    @pytest.fixture
    async def cluster(self) -> Cluster:
        pytest.fail(f"{type(self).__name__} must give the 'cluster' fixture")

    @pytest.fixture
    def backend(self) -> Backend | None:
        """The broker's backend, if it has one (the fault tests are skipped otherwise)."""
        return None

    # ------------------------------------------------------------------ every broker

    async def test_a_room_message_reaches_every_member_on_every_node_once(self, cluster: Cluster) -> None:
        servers = await cluster(2)
        ann, bob = await members(servers, "room")
        outsider = (await members(servers[1:]))[0]
        servers[0].to("room", "news", 1)
        servers[1].to("room", "news", 2)
        for client in (ann, bob):
            assert sorted(await received(client, 2)) == [1, 2]
        for client, server in ((ann, servers[0]), (bob, servers[1]), (outsider, servers[1])):
            await nothing_more(client, server)

    async def test_a_senders_messages_arrive_once_and_in_order(self, cluster: Cluster) -> None:
        servers = await cluster(2)
        _, bob = await members(servers, "room")
        for n in range(MESSAGES):
            servers[0].to("room", "n", n)
        assert await received(bob, MESSAGES) == list(range(MESSAGES))
        await nothing_more(bob, servers[1])

    async def test_broadcast_and_exclude_reach_across_nodes(self, cluster: Cluster) -> None:
        servers = await cluster(2)
        ann, bob, cid = await members([*servers, servers[1]])
        servers[0].broadcast("alert", "all", exclude=ident(cid))
        assert await received(ann, 1) == ["all"] and await received(bob, 1) == ["all"]
        servers[0].to("nowhere", "x")  # a room without members anywhere: nobody
        await nothing_more(cid, servers[1])

    async def test_to_id_reaches_a_client_of_another_node(self, cluster: Cluster) -> None:
        servers = await cluster(2)
        _, bob = await members(servers)
        await reachable(servers[0], bob)
        servers[0].to_id(ident(bob), "private", {"n": 1})
        assert await received(bob, 1) == [{"n": 1}]
        await nothing_more(bob, servers[1])

    async def test_no_join_window(self, cluster: Cluster) -> None:
        """Published anywhere right after join_room returned, a message reaches the new member,
        the first of its node in that room (also when the room's last member there just left)."""
        servers = await cluster(2, rate_limit=None)
        (client,) = await members(servers[1:])
        for n in range(30):
            room = f"window-{n // 2}"
            assert (await client.join(room)).get("ok") is not None
            servers[0].to(room, "hello", n)
            assert await received(client, 1) == [n]
            await client.leave(room)

    # ------------------------------------------------------------------ brokers joining nodes

    async def test_requests_disconnects_joins_of_a_client_of_another_node(self, cluster: Cluster) -> None:
        servers = await cluster(2)
        if not _cluster_broker(servers[0]):
            pytest.skip("not a ClusterBroker")
        _, bob = await members(servers)
        await reachable(servers[0], bob)
        bob.on_ack("echo", lambda data: {"echo": data})
        assert await servers[0].request(ident(bob), "echo", 7) == {"echo": 7}
        cluster_view = servers[0].cluster
        assert await cluster_view.join(ident(bob), "vip") is True
        await eventually(
            lambda: servers[1].get_room_members("vip") == [ident(bob)], what="joined on its node"
        )
        servers[0].to("vip", "welcome")
        assert await received(bob, 1) == [None]
        assert await cluster_view.leave(ident(bob), "vip") is True
        await eventually(lambda: servers[1].get_room_members("vip") == [], what="left on its node")
        assert await cluster_view.to_id(ident(bob), "private", 1) is True
        assert await received(bob, 1) == [1]
        assert await cluster_view.to_id("nobody", "private", 1) is False
        assert await cluster_view.join("nobody", "vip") is False
        assert await cluster_view.disconnect(ident(bob), 4001, "bye") is True
        assert await bob.wait_closed() == (4001, "bye")
        assert await cluster_view.disconnect("nobody") is False

    async def test_cluster_reads_cover_every_node(self, cluster: Cluster) -> None:
        servers = await cluster(2)
        if not _cluster_broker(servers[0]):
            pytest.skip("not a ClusterBroker")
        ann, bob = await members(servers, "room")
        view = servers[1].cluster

        async def read_both() -> bool:
            return (
                sorted(await view.get_room_members("room")) == sorted([ident(ann), ident(bob)])
                and await view.get_rooms() == ["room"]
                and {info.id for info in await view.get_clients()} == {ident(ann), ident(bob)}
                and (await view.get_stats()).node_count == 2
            )

        await eventually(read_both, what="both nodes' state in every read")
        info = await view.get_client(ident(ann))
        assert info is not None and info.rooms == frozenset({"room"})

    async def test_cluster_reads_show_metadata_as_it_is_now(self, cluster: Cluster) -> None:
        """``ctx.set_metadata`` after connect shows in every node's cluster-wide reads (within
        ``METADATA_DELAY``: a broker may write it behind, never later than that)."""
        servers = await cluster(2)
        if not _cluster_broker(servers[0]):
            pytest.skip("not a ClusterBroker")

        @servers[0].on_ack("plan")
        def plan(ctx: Any) -> None:
            ctx.set_metadata("plan", ctx.data)

        (ann,) = await members(servers[:1])
        await reachable(servers[1], ann)
        for value in ("free", "pro"):
            await ann.request("plan", value)
            await eventually(
                functools.partial(_plan_is, servers[1], ident(ann), value),
                timeout=METADATA_DELAY,
                what=f"plan {value!r} in the other node's read",
            )

    # ------------------------------------------------------------------ brokers keeping history

    async def test_positions_agree_on_every_node_and_recovery_works_anywhere(self, cluster: Cluster) -> None:
        """Both nodes publish into one room in the same moments: one sequence of offsets, the
        same on every node, each node's own publications in the order it made them."""
        servers = await _with_history(cluster, 2, {"feed": {"history_size": 50}})
        ann, bob = await members(servers)
        epoch = (await ann.join("feed"))["position"]["epoch"]
        await bob.join("feed")
        for n in range(20):
            servers[0].to("feed", "n", ["one", n])
            servers[1].to("feed", "n", ["two", n])
        ann_events = [await ann.next_event() for _ in range(40)]
        bob_events = [await bob.next_event() for _ in range(40)]
        assert [(e.position, e.data) for e in ann_events] == [(e.position, e.data) for e in bob_events]
        assert [position(e).offset for e in ann_events] == list(range(1, 41))
        assert all(position(e).epoch == epoch for e in ann_events)
        for node in ("one", "two"):
            assert [n for name, n in (e.data for e in ann_events) if name == node] == list(range(20))
        # A client that saw up to offset 4 on node one recovers the rest on node two.
        (late,) = await members(servers[1:])
        answer = await late.join("feed", since=Position(epoch, 4))
        assert answer["recovered"] is True and answer["replayed"] == 36
        assert [(await late.next_event()).data for _ in range(36)] == [e.data for e in ann_events[4:]]

    async def test_missed_publications_older_than_the_history_are_not_recovered(
        self, cluster: Cluster
    ) -> None:
        servers = await _with_history(cluster, 2, {"feed": {"history_size": 5}})
        watcher, gone = await members(servers)
        epoch = (await watcher.join("feed"))["position"]["epoch"]
        await gone.join("feed")
        servers[0].to("feed", "n", 1)
        assert await received(gone, 1) == [1]
        gone.close()
        for n in range(2, 12):
            servers[0].to("feed", "n", n)
        assert await received(watcher, 11) == list(range(1, 12))  # all stored by now
        (back,) = await members(servers[1:])
        answer = await back.join("feed", since=Position(epoch, 1))
        assert answer["recovered"] is False and answer["reason"] == "history_lost"
        assert answer["position"] == {"epoch": epoch, "offset": 11}
        (again,) = await members(servers[1:])  # (back, at offset 11 now, would drop a replay)
        answer = await again.join("feed", since=Position(epoch, 8))
        assert answer["recovered"] is True and answer["replayed"] == 3
        assert await received(again, 3) == [9, 10, 11]
        assert servers[1].get_stats().recoveries == {"history_lost": 1, "recovered": 1}

    async def test_while_the_backend_is_away_a_history_room_delivers_locally_without_positions(
        self, cluster: Cluster, backend: Backend | None
    ) -> None:
        server, client, _, backend = await _history_member(cluster, backend)
        await resolve(backend.stop())
        await eventually(lambda: server.get_stats().degraded, what="degraded")
        server.to("feed", "n", "during")
        event = await client.next_event()
        assert event.data == "during" and event.position is None
        assert server.get_stats().counters["history_unavailable"] == 1
        answer = await client.join("feed", since=Position("e", 0))
        assert answer["recovered"] is False and answer["reason"] == "unavailable"
        await resolve(backend.start())
        await eventually(lambda: not server.get_stats().degraded, what="healed")

    async def test_a_backend_restarted_empty_starts_a_new_epoch(
        self, cluster: Cluster, backend: Backend | None
    ) -> None:
        server, client, epoch, backend = await _history_member(cluster, backend)
        server.to("feed", "n", 1)
        assert (await client.next_event()).position == Position(epoch, 1)
        await resolve(backend.stop())
        await eventually(lambda: server.get_stats().degraded, what="the loss seen")
        await resolve(backend.start())
        await eventually(lambda: not server.get_stats().degraded, what="back")
        answer = await client.join("feed", since=Position(epoch, 1))
        assert answer["recovered"] is False and answer["reason"] == "epoch_changed"
        new_epoch = answer["position"]["epoch"]
        assert new_epoch != epoch and answer["position"]["offset"] == 0
        server.to("feed", "n", 2)
        assert (await client.next_event()).position == Position(new_epoch, 1)

    # ------------------------------------------------------------------ brokers sharing presence

    async def test_presence_is_shared_by_every_node(self, cluster: Cluster) -> None:
        options = {"rooms": {"team": {"presence": True}}, "presence_interval": 0.05, "presence_grace": 0}
        servers = await cluster(2, **options)
        if not _shares_presence(servers[0]):
            pytest.skip("the broker shares no presence")
        ann, bob = await members(servers, "team")
        both = {ident(ann): None, ident(bob): None}
        for server in servers:
            await eventually(functools.partial(_presence_is, server, both), what="both members, on each node")
        await bob.leave("team")
        only_ann = {ident(ann): None}
        await eventually(functools.partial(_presence_is, servers[0], only_ann), what="bob gone everywhere")

    # ------------------------------------------------------------------ brokers with a backend

    async def test_an_outage_degrades_each_node_which_serves_its_own_then_heals(
        self, cluster: Cluster, backend: Backend | None
    ) -> None:
        if backend is None:
            pytest.skip("the broker has no backend to take away")
        servers = await cluster(2)
        ann, bob = await members(servers, "room")
        await resolve(backend.stop())
        await eventually(lambda: all(server.get_stats().degraded for server in servers), what="degraded")
        servers[0].to("room", "local", 1)  # a node goes on serving its own clients
        assert await received(ann, 1) == [1]
        await resolve(backend.start())  # back, and empty: the nodes write their state again
        await eventually(lambda: not any(server.get_stats().degraded for server in servers), what="healed")
        await eventually(_Crossing(servers[0], bob), what="cross-node delivery again")

    async def test_a_hung_backend_degrades_each_node_which_serves_its_own_then_heals(
        self, cluster: Cluster, backend: Backend | None
    ) -> None:
        """The backend stops answering without closing anything (paused): found by the broker's
        own liveness checks, not by a closed connection."""
        pause, resume = getattr(backend, "pause", None), getattr(backend, "resume", None)
        if pause is None or resume is None:
            pytest.skip("the backend cannot be paused")
        servers = await cluster(2)
        ann, bob = await members(servers, "room")
        await resolve(pause())
        try:
            await eventually(lambda: all(server.get_stats().degraded for server in servers), what="degraded")
            servers[0].to("room", "local", 1)
            assert await received(ann, 1) == [1]
        finally:
            await resolve(resume())
        await eventually(lambda: not any(server.get_stats().degraded for server in servers), what="healed")
        await eventually(_Crossing(servers[0], bob), what="cross-node delivery again")


class _Crossing:
    """Each call publishes a marker to "room" on ``server``: true once any has reached
    ``client`` (on another node)."""

    def __init__(self, server: StelarServer, client: TestClient) -> None:
        self.server, self.client, self.sent = server, client, 0

    def __call__(self) -> bool:
        self.sent += 1
        self.server.to("room", "cross", self.sent)
        return any(event.event == "cross" for event in self.client.pending_events())


async def _plan_is(server: StelarServer, client_id: str, plan: str) -> bool:
    info = await server.cluster.get_client(client_id)
    return info is not None and info.metadata.get("plan") == plan


async def _with_history(cluster: Cluster, count: int, rooms: dict[str, Any]) -> list[StelarServer]:
    """``count`` nodes with the rooms ``rooms`` keeping history; skips when the broker keeps none."""
    try:
        servers = await cluster(count, rooms=rooms, rate_limit=None)
    except ConfigError as exc:  # a server refuses rooms with history on a broker keeping none
        if "history" not in str(exc):
            raise
        pytest.skip(f"the broker keeps no history: {exc}")
    if not _keeps_history(servers[0]):
        pytest.skip("the broker keeps no history")
    return servers


async def _history_member(
    cluster: Cluster, backend: Backend | None
) -> tuple[StelarServer, TestClient, str, Backend]:
    """One node with a backend and a member of its room with history "feed", the room's epoch
    and the backend; skips when the broker has no backend or keeps no history."""
    if backend is None:
        pytest.skip("the broker has no backend to take away")
    (server,) = await _with_history(cluster, 1, {"feed": {"history_size": 5}})
    (client,) = await members([server])
    answer = await client.join("feed")
    return server, client, answer["position"]["epoch"], backend


async def _presence_is(server: StelarServer, expected: dict[str, Any]) -> bool:
    members: dict[str, Any] = await server.cluster.presence("team")
    return members == expected
