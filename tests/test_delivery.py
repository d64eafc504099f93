"""Rooms with history: positions, recovery on rejoin (docs/delivery.md), with the local broker.
The protocol-level cases speak through the test kit's client; the reconnection case is the real
``StelarClient`` over real TCP and WebSocket sockets aborted under it."""

import asyncio
import random

import pytest

from stelar_core import AckError, ConfigError, ErrorCode, StelarClient
from stelar_core.builtins.brokers import LocalBroker, MemoryBus
from stelar_core.protocol import FrameType, dump_json, encode_frame
from stelar_core.protocol.publications import Position
from stelar_core.testing import FakeClock, eventually
from stelar_core.testing.drops import drop_session

HISTORY = {"feed:*": {"history_size": 5, "history_ttl": 60}}


async def history_server(factory, **options):
    return await factory(rooms=HISTORY, rate_limit=None, **options)


async def test_a_join_returns_the_position_even_before_anything_was_published(
    stelar_server_factory, stelar_client_factory
):
    server = await history_server(stelar_server_factory)
    client = await stelar_client_factory(server)
    answer = await client.join("feed:1")
    assert answer["ok"] is True and answer["position"]["offset"] == 0
    epoch = answer["position"]["epoch"]
    assert isinstance(epoch, str) and epoch
    assert await client.join("plain") == {"ok": True}  # no history: no position


async def test_publications_carry_consecutive_offsets_and_the_same_epoch(
    stelar_server_factory, stelar_client_factory
):
    server = await history_server(stelar_server_factory)
    client = await stelar_client_factory(server)
    epoch = (await client.join("feed:1"))["position"]["epoch"]
    for n in range(3):
        server.to("feed:1", "tick", {"n": n})
    server.to_binary("feed:1", "blob", b"\x00\x01")
    received = [await client.next_event() for _ in range(4)]
    assert [(e.event, e.data, e.room) for e in received] == [
        ("tick", {"n": 0}, "feed:1"),
        ("tick", {"n": 1}, "feed:1"),
        ("tick", {"n": 2}, "feed:1"),
        ("blob", b"\x00\x01", "feed:1"),
    ]
    assert [e.position for e in received] == [Position(epoch, offset) for offset in (1, 2, 3, 4)]


async def test_a_rejoin_replays_exactly_what_was_missed_and_says_recovered(
    stelar_server_factory, stelar_client_factory
):
    server = await history_server(stelar_server_factory)
    first = await stelar_client_factory(server)
    epoch = (await first.join("feed:1"))["position"]["epoch"]
    server.to("feed:1", "tick", 1)
    await first.next_event()
    first.close()
    await first.wait_closed()
    for n in (2, 3, 4):
        server.to("feed:1", "tick", n)
    again = await stelar_client_factory(server)
    answer = await again.join("feed:1", since=Position(epoch, 1))
    assert answer == {"ok": True, "position": {"epoch": epoch, "offset": 4}, "recovered": True, "replayed": 3}
    # The replay came before the answer, in order; then the room goes on live.
    assert [(await again.next_event()).data for _ in range(3)] == [2, 3, 4]
    server.to("feed:1", "tick", 5)
    assert (await again.next_event()).position == Position(epoch, 5)
    stats = server.get_stats()
    assert stats.recoveries == {"recovered": 1} and stats.counters["replayed_messages"] == 3


async def test_nothing_missed_is_a_recovery_of_nothing(stelar_server_factory, stelar_client_factory):
    server = await history_server(stelar_server_factory)
    client = await stelar_client_factory(server)
    epoch = (await client.join("feed:1"))["position"]["epoch"]
    answer = await client.join("feed:1", since=Position(epoch, 0))
    assert answer == {"ok": True, "position": {"epoch": epoch, "offset": 0}, "recovered": True, "replayed": 0}


@pytest.mark.parametrize(
    ("published", "since", "reason"),
    [
        (8, 1, "history_lost"),  # 7 missed, 5 kept
        (3, 4, "invalid_position"),  # an offset the room has not reached
        (3, None, "epoch_changed"),  # a position from another stream
    ],
)
async def test_recovery_that_cannot_be_whole_replays_nothing_and_says_why(
    stelar_server_factory, stelar_client_factory, published, since, reason
):
    server = await history_server(stelar_server_factory)
    client = await stelar_client_factory(server)
    epoch = (await client.join("feed:1"))["position"]["epoch"]
    for n in range(published):
        server.to("feed:1", "tick", n)
    for _ in range(published):
        await client.next_event()
    position = Position("other", 1) if since is None else Position(epoch, since)
    answer = await client.join("feed:1", since=position)
    assert answer == {
        "ok": True,
        "position": {"epoch": epoch, "offset": published},
        "recovered": False,
        "reason": reason,
    }
    server.to("feed:1", "tick", "live")
    assert (await client.next_event()).data == "live"  # nothing partial came before it
    assert server.get_stats().recoveries == {reason: 1}


async def test_more_missed_than_the_replay_cap_is_not_recovered(stelar_server_factory, stelar_client_factory):
    server = await history_server(stelar_server_factory, max_recovery_replay=2)
    client = await stelar_client_factory(server)
    epoch = (await client.join("feed:1"))["position"]["epoch"]
    for n in range(3):
        server.to("feed:1", "tick", n)
    answer = await client.join("feed:1", since=Position(epoch, 0))
    assert answer["recovered"] is False and answer["reason"] == "too_many"


class GatedHistory:
    """The local broker's history, each read taken at once and answered when the test opens
    ``gate`` (a store across the network answers later)."""

    def __init__(self, inner):
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.answered = 0

    def publish(self, delivery):
        return self.inner.publish(delivery)

    async def read(self, room, policy, after, limit):
        page = self.inner.read(room, policy, after, limit)
        await self.gate.wait()
        self.answered += 1
        return page


async def gated_server(factory, **options):
    broker = LocalBroker()
    broker.history = GatedHistory(broker.history)
    server = await history_server(factory, broker=broker, **options)
    return server, broker.history


@pytest.mark.parametrize("stelar_transport", ["tcp"], indirect=True)
async def test_a_session_resumed_while_its_rejoin_is_read_is_answered_once(stelar_server_factory):
    """A client drops while its rejoin's history read is still out, comes back (the same session)
    and joins again: the newest join answers, everything arrives once and in order, and the
    older read is dropped (not answered, not replayed)."""
    server, history = await gated_server(stelar_server_factory)
    client = StelarClient(
        next(iter(server.addresses.values()))[0], reconnection_delay=0.001, random=lambda: 0.0
    )
    received: list[int] = []
    outcomes: list[tuple[str, object]] = []
    client.on("n", received.append)
    client.on("recovered", lambda info: outcomes.append(("recovered", info["replayed"])))
    client.on("not_recovered", lambda info: outcomes.append(("not_recovered", info["reason"])))
    await client.connect()
    try:
        await client.join_room("feed:1")
        server.to("feed:1", "n", 1)
        await eventually(lambda: received == [1], what="the first message")
        history.gate.clear()
        drop_session(server, client.id)
        first = await _holding(server, "feed:1", None)  # the rejoin's read: after offset 1
        server.to("feed:1", "n", 2)  # held for it
        drop_session(server, client.id)
        second = await _holding(server, "feed:1", first)  # the same session again: after 2
        server.to("feed:1", "n", 3)  # held for the newest join only
        assert len(first.deliveries) == 1 and len(second.deliveries) == 1
        history.gate.set()
        await eventually(lambda: received == [1, 2, 3] and history.answered == 3, what="2 and 3")
        server.to("feed:1", "n", 4)
        await eventually(lambda: len(received) == 4, what="the next message")
        assert received == [1, 2, 3, 4] and outcomes == [("recovered", 1)]
        assert server.hub.recovery.held == {} and server.get_stats().recoveries["session_resumed"] == 2
    finally:
        await client.disconnect()


async def _holding(server, room, before):
    """The holding of the newest join of the room's one recovering session, once it is not
    ``before``."""

    def newest():
        holdings = list(server.hub.recovery.held.get(room, {}).values())
        return holdings[0] if holdings and holdings[0] is not before else None

    await eventually(newest, what="a join's read under way")
    return newest()


async def test_more_published_while_reading_than_a_recovery_holds_is_an_overflow(
    stelar_server_factory, stelar_client_factory
):
    server, history = await gated_server(stelar_server_factory, max_recovery_replay=2)
    client = await stelar_client_factory(server)
    epoch = (await client.join("feed:1"))["position"]["epoch"]
    history.gate.clear()
    answer = client.expect_room_answer(FrameType.JOIN, "feed:1")
    client.send_frame(FrameType.JOIN, "feed:1", dump_json({"since": Position(epoch, 0).to_json()}))
    holding = await _holding(server, "feed:1", None)
    for n in range(5):  # past the cap: nothing more is kept, and nothing goes out before the answer
        server.to("feed:1", "tick", n)
    assert holding.overflowed and holding.deliveries == []
    history.gate.set()
    assert await answer == {"ok": True, "recovered": False, "reason": "overflow"}
    server.to("feed:1", "tick", "live")
    assert (await client.next_event()).data == "live"
    assert server.get_stats().recoveries == {"overflow": 1}


async def test_a_room_without_history_says_so_when_asked_to_recover(
    stelar_server_factory, stelar_client_factory
):
    server = await history_server(stelar_server_factory)
    client = await stelar_client_factory(server)
    answer = await client.join("plain", since=Position("e", 3))
    assert answer == {"ok": True, "recovered": False, "reason": "no_history"}
    assert server.get_room_members("plain") == [client.id]


async def test_history_expires_after_its_ttl_and_the_offsets_go_on(
    stelar_server_factory, stelar_client_factory
):

    clock = FakeClock()
    server = await stelar_server_factory(rooms={"feed": {"history_size": 5, "history_ttl": 10}}, clock=clock)
    client = await stelar_client_factory(server)
    epoch = (await client.join("feed"))["position"]["epoch"]
    server.to("feed", "tick", 1)
    await client.next_event()
    clock.advance(11)
    server.to("feed", "tick", 2)  # the first is gone with the ttl; this one starts anew
    await client.next_event()
    assert (await client.join("feed", since=Position(epoch, 0)))["reason"] == "history_lost"
    answer = await client.join("feed", since=Position(epoch, 1))
    assert answer["recovered"] is True and answer["position"] == {"epoch": epoch, "offset": 2}


@pytest.mark.parametrize(
    "payload",
    [
        b'{"since": 5}',
        b'{"since": {"epoch": "", "offset": 1}}',
        b'{"since": {"epoch": "e", "offset": -1}}',
        b'{"since": {"epoch": "e", "offset": true}}',
        b'{"since": {"epoch": "e", "offset": 9007199254740992}}',
        b'{"since": {"epoch": "' + b"x" * 65 + b'", "offset": 1}}',
        b"{",
    ],
)
async def test_a_malformed_since_is_refused_by_name_and_the_connection_carries_on(
    stelar_server_factory, stelar_client_factory, payload
):
    server = await history_server(stelar_server_factory)
    client = await stelar_client_factory(server)
    waiting = client.expect_room_answer(FrameType.JOIN, "feed:1")
    client.send_raw(encode_frame(FrameType.JOIN, "feed:1", payload))
    answer = await asyncio.wait_for(waiting, 5)
    assert answer["error"]["code"] in {ErrorCode.INVALID_FRAME, ErrorCode.INVALID_JSON}
    assert "since" in answer["error"]["message"] or "JSON" in answer["error"]["message"]
    assert server.get_room_members("feed:1") == []
    assert server.get_stats().invalid_messages == 1
    assert (await client.join("feed:1"))["ok"] is True


async def test_a_client_may_not_send_publications(stelar_server_factory, stelar_client_factory):
    server = await history_server(stelar_server_factory)
    client = await stelar_client_factory(server)
    client.send_raw(encode_frame(FrameType.PUBLICATION, "feed:1", b"\x00" * 9))
    code, body = await client.next_error()
    assert code == ErrorCode.INVALID_FRAME and "publications" in body["message"]
    assert (await client.join("feed:1"))["ok"] is True


async def test_a_refused_join_recovers_nothing_and_reveals_no_position(
    stelar_server_factory, stelar_client_factory
):
    server = await history_server(stelar_server_factory, hooks={"on_client_join_room": lambda room: False})
    client = await stelar_client_factory(server)
    server.to("feed:1", "secret", 1)
    answer = await client.join("feed:1", since=Position("e", 0))
    assert answer["error"]["code"] == ErrorCode.JOIN_REJECTED and "position" not in answer


def test_room_policies_are_checked_by_name():
    from stelar_core import StelarServer

    with pytest.raises(ConfigError, match=r"rooms\['chat:\*'\].*unknown keys \['history_sise'\]"):
        StelarServer(rooms={"chat:*": {"history_sise": 5}})
    with pytest.raises(ConfigError, match=r"history_size.*integer >= 0"):
        StelarServer(rooms={"chat:*": {"history_size": -1}})
    with pytest.raises(ConfigError, match=r"'rooms'.*mapping of room pattern"):
        StelarServer(rooms=["chat:*"])


async def test_a_broker_without_a_history_store_is_refused_at_start():
    from stelar_core import StelarServer

    class PlainBroker:
        async def start(self, port):
            self.deliver = port.deliver

        def publish(self, delivery):
            self.deliver(delivery)

        async def stop(self):
            pass

    server = StelarServer(transports=["memory"], broker=PlainBroker(), rooms=HISTORY)
    with pytest.raises(ConfigError, match="asks for history, but the broker PlainBroker keeps none"):
        await server.start()
    await server.stop()


async def test_hubs_on_one_bus_share_positions(stelar_server_factory, stelar_client_factory):
    bus = MemoryBus()
    one = await history_server(stelar_server_factory, broker=bus.broker())
    two = await history_server(stelar_server_factory, broker=bus.broker())
    a, b = await stelar_client_factory(one), await stelar_client_factory(two)
    epoch = (await a.join("feed:1"))["position"]["epoch"]
    assert (await b.join("feed:1"))["position"]["epoch"] == epoch
    one.to("feed:1", "tick", 1)
    two.to("feed:1", "tick", 2)
    assert [(await b.next_event()).position.offset for _ in range(2)] == [1, 2]
    answer = await b.join("feed:1", since=Position(epoch, 0))  # any node serves any room's history
    assert answer["recovered"] is True and answer["replayed"] == 2


# ------------------------------------------------------------------ real sockets, real drops


@pytest.mark.parametrize("stelar_transport", ["tcp", "ws"], indirect=True)
async def test_a_client_whose_socket_is_aborted_twenty_times_gets_every_message_once_in_order(
    stelar_server_factory,
):
    server = await stelar_server_factory(rooms={"feed": {"history_size": 1000}}, rate_limit=None)
    client = StelarClient(
        next(iter(server.addresses.values()))[0],
        reconnection_delay=0.001,
        random=lambda: 0.0,
        reconnection_attempts=None,
    )
    received: list[int] = []
    outcomes: list[tuple[str, object]] = []
    client.on("n", received.append)
    client.on("recovered", lambda info: outcomes.append(("recovered", info["replayed"])))
    client.on("not_recovered", lambda info: outcomes.append(("not_recovered", info["reason"])))
    # Half the drops land right after a reconnection, while the replay is on its way.
    armed = []

    def connected():
        if armed:
            armed.clear()
            drop_session(server, client.id)

    client.on("connect", connected)
    rng = random.Random(26)
    drops = set(rng.sample(range(1, 1000), 20))
    await client.connect()
    assert (await client.join_room("feed")).position.offset == 0
    try:
        for n in range(1, 1001):
            server.to("feed", "n", n)
            if n in drops:
                await eventually(
                    lambda: client.connected and server.hub.session(client.id), what="reconnected"
                )
                if rng.random() < 0.5:
                    armed.append(True)
                drop_session(server, client.id)
            if n % 7 == 0:
                await asyncio.sleep(0)  # let the sockets move
        await eventually(lambda: len(received) >= 1000 and client.connected, what="all 1000", timeout=20)
    finally:
        await client.disconnect()
    assert received == list(range(1, 1001))
    # Every rejoin answered was a recovery (a drop may come before the answer of one).
    assert len(outcomes) >= 10 and all(kind == "recovered" for kind, _ in outcomes), outcomes
    assert sum(replayed for _, replayed in outcomes) > 0


# ------------------------------------------------------------------ reading a room's history


@pytest.mark.parametrize("stelar_transport", ["tcp"], indirect=True)
async def test_a_member_reads_pages_of_its_room_history(stelar_server_factory):
    server = await stelar_server_factory(rooms={"feed": {"history_size": 5}}, max_recovery_replay=3)
    client = StelarClient(next(iter(server.addresses.values()))[0])
    async with client:
        with pytest.raises(AckError, match="not_in_room"):
            await client.history("feed")
        joined = await client.join_room("feed")
        for n in range(7):
            server.to("feed", "n", n)
        server.to_binary("feed", "blob", b"\x00\xff")
        await eventually(lambda: client.positions["feed"].offset == 8, what="all arrived")
        page = await client.history("feed", since=4, limit=3)
        assert page.position == Position(joined.position.epoch, 8)
        assert [(e.offset, e.event, e.data) for e in page.publications] == [
            (5, "n", 4),
            (6, "n", 5),
            (7, "n", 6),
        ]
        last = await client.history("feed", since=7)
        assert [(e.offset, e.data, e.binary) for e in last.publications] == [(8, b"\x00\xff", True)]
        oldest = await client.history("feed")  # only the last 5 are kept; 3 per page at most
        assert [e.offset for e in oldest.publications] == [4, 5, 6]
        await client.join_room("plain")
        with pytest.raises(AckError, match="no_history"):
            await client.history("plain")
        for bad in ({"room": "feed", "limit": 0}, {"room": "feed", "since": -1}, {"room": ""}, [1]):
            with pytest.raises(AckError, match="invalid_frame"):
                await client.request("$history", bad)


def test_request_names_starting_with_a_dollar_are_reserved():
    from stelar_core import StelarServer

    with pytest.raises(ConfigError, match=r"starting with '\$' are the protocol's own: '\$mine'"):
        StelarServer(transports=["memory"]).on_ack("$mine", lambda ctx: None)
