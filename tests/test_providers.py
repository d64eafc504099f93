"""Custom provider objects passed directly: IP trackers (sync and async), ID functions."""

import asyncio
import functools
import inspect
import itertools
import operator
import re
import uuid

import pytest

from stelar_core import ConnectionRefused, ErrorCode
from stelar_core.builtins.id_generators import uuid4
from stelar_core.plugin_api import DisconnectCode, LimitReached
from stelar_core.testing import connect_client


class BlocklistTracker:
    """The seed's IIPTracker example: blocked IPs refused, VIPs unlimited, others counted."""

    def __init__(self):
        self.blocked = {"203.0.113.9"}
        self.vip = {"198.51.100.1"}
        self.counts = {}
        self.removed = asyncio.Event()

    def check(self, ip, limit):
        if ip in self.blocked:
            return False
        return ip in self.vip or self.counts.get(ip, 0) < limit

    def add(self, ip):
        self.counts[ip] = self.counts.get(ip, 0) + 1

    def remove(self, ip):
        self.counts[ip] -= 1
        self.removed.set()

    def count(self, ip):
        return self.counts.get(ip, 0)


class AsyncBlocklistTracker(BlocklistTracker):
    async def check(self, ip, limit):
        return BlocklistTracker.check(self, ip, limit)

    async def add(self, ip):
        BlocklistTracker.add(self, ip)

    async def remove(self, ip):
        BlocklistTracker.remove(self, ip)

    async def count(self, ip):
        return BlocklistTracker.count(self, ip)


@pytest.mark.parametrize("tracker_class", [BlocklistTracker, AsyncBlocklistTracker])
async def test_a_custom_ip_tracker_decides_admission(
    tracker_class, stelar_server_factory, stelar_client_factory
):
    tracker = tracker_class()
    server = await stelar_server_factory(ip_tracker=tracker, max_connections_per_ip=1)
    with pytest.raises(ConnectionRefused) as info:
        await connect_client(server, local_address="203.0.113.9")
    assert info.value.code == ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP
    vips = [await stelar_client_factory(server, local_address="198.51.100.1") for _ in range(3)]
    normal = await stelar_client_factory(server, local_address="192.0.2.5")
    with pytest.raises(ConnectionRefused):
        await connect_client(server, local_address="192.0.2.5")
    assert tracker.counts == {"198.51.100.1": 3, "192.0.2.5": 1}
    normal.close()
    await normal.wait_closed()
    await asyncio.wait_for(tracker.removed.wait(), 5)
    assert tracker.counts["192.0.2.5"] == 0
    assert len(vips) == 3


async def test_a_custom_id_function(stelar_server_factory, stelar_client_factory):
    numbers = itertools.count(1)
    server = await stelar_server_factory(id_generator=lambda: f"user_{next(numbers)}")
    first = await stelar_client_factory(server)
    second = await stelar_client_factory(server)
    assert (first.id, second.id) == ("user_1", "user_2")


async def test_client_ids_are_random_version_4_uuids_by_default(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory()
    ids = [(await stelar_client_factory(server)).id for _ in range(3)]
    parsed = [uuid.UUID(client_id) for client_id in ids]
    assert [str(value) for value in parsed] == ids  # the canonical lower-case text form
    assert {(value.version, value.variant) for value in parsed} == {(4, uuid.RFC_4122)}
    assert len(set(ids)) == 3
    draws = [uuid4() for _ in range(2000)]
    assert len(set(draws)) == 2000
    # Every bit outside the version and variant varies.
    varying = functools.reduce(
        operator.or_, (uuid.UUID(a).int ^ uuid.UUID(b).int for a, b in itertools.pairwise(draws))
    )
    assert varying == (1 << 128) - 1 & ~(0xF << 76) & ~(0x3 << 62)


async def test_the_token_id_generator_by_name(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(id_generator="token")
    client = await stelar_client_factory(server)
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", client.id)


async def test_before_broadcast_hook_can_cancel(stelar_server_factory, stelar_client_factory):
    seen = []

    def no_spam(event, data, exclude, room):
        seen.append((event, data, sorted(exclude), room))
        return False if event == "spam" else None

    server = await stelar_server_factory(hooks={"on_before_broadcast": no_spam})
    client = await stelar_client_factory(server)
    await client.join("r")
    server.broadcast("spam", 1)
    server.to("r", "spam", 2, exclude="x")
    server.broadcast("news", 3)
    assert (await client.next_event()).data == 3
    assert client.pending_events() == []
    assert seen == [("spam", 1, [], None), ("spam", 2, ["x"], "r"), ("news", 3, [], None)]


@pytest.mark.parametrize("tracker_class", [BlocklistTracker, AsyncBlocklistTracker])
async def test_admission_is_at_once_when_the_tracker_answers_at_once(tracker_class, stelar_server_factory):
    """A transport's per-connection admission costs no coroutine with the tracker kept in this
    process; a tracker that must be awaited gets an awaitable. Both refuse the same way."""
    tracker = tracker_class()
    server = await stelar_server_factory(ip_tracker=tracker, max_connections_per_ip=1)
    hub = server.hub
    admitted = hub.admit_nowait("192.0.2.5", "tcp")
    at_once = tracker_class is BlocklistTracker
    assert inspect.isawaitable(admitted) is not at_once
    ticket = admitted if at_once else await admitted
    assert tracker.counts == {"192.0.2.5": 1}
    with pytest.raises(ConnectionRefused) as refused:
        second = hub.admit_nowait("192.0.2.5", "tcp")
        assert not at_once, "a tracker that answers at once refuses at once"
        await second
    assert refused.value.code == ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP
    assert hub.admissions.admitted == 1  # the refused one holds no place
    ticket.release()
    await asyncio.wait_for(tracker.removed.wait(), 5)
    assert (hub.admissions.admitted, tracker.counts) == (0, {"192.0.2.5": 0})


class SharedLimitTracker(BlocklistTracker):
    """A tracker keeping a limit of its own for several nodes (as stelar-redis's cluster-wide
    max_connections): past two connections in all, it raises LimitReached."""

    async def check(self, ip, limit):
        if sum(self.counts.values()) >= 2:
            raise LimitReached(
                ErrorCode.SERVER_FULL,
                "the cluster is full (2 connections across its nodes)",
                DisconnectCode.TRY_AGAIN_LATER,
                active=2,
                limit=2,
                scope="cluster",
            )
        return True


async def test_a_trackers_shared_limit_is_counted_and_reported_like_the_hubs_own(
    stelar_server_factory, stelar_client_factory
):
    reached = []
    hooks = {
        "on_max_connections_reached": lambda active_connections, max_connections, ip, scope: reached.append(
            (active_connections, max_connections, ip, scope)
        )
    }
    tracker = SharedLimitTracker()
    server = await stelar_server_factory(ip_tracker=tracker, hooks=hooks)
    for _ in range(2):
        await stelar_client_factory(server, local_address="192.0.2.5")
    with pytest.raises(ConnectionRefused) as info:
        await connect_client(server, local_address="192.0.2.6")
    assert (info.value.code, info.value.reason) == (
        ErrorCode.SERVER_FULL,
        "the cluster is full (2 connections across its nodes)",
    )
    assert server.get_stats().refused_connections == {ErrorCode.SERVER_FULL: 1}
    assert reached == [(2, 2, "192.0.2.6", "cluster")]
    assert server.get_stats().active_connections == 2  # the refused one holds no place
