"""Send-queue policies of rooms (docs/delivery.md): what a member that cannot keep up gets, over
real TCP sockets whose reader stops reading."""

import asyncio

import pytest

from stelar_core import ConfigError, ErrorCode, StelarServer
from stelar_core.protocol import FrameType, encode_frame
from stelar_core.testing import FakeClock, TestClient, connect_client, eventually

FILLER = "x" * 16_384


async def stall(server, client):
    """Stop reading, then fill the server's output to ``client`` until the transport says it can
    take no more: from then on, the room's lossy queue holds what it gets."""
    client.pause_reading()
    connection = server.hub.session(client.id).connection
    for _ in range(2_000):  # bounded: a few MB at most
        if not connection.writable:
            return
        server.to_id(client.id, "filler", FILLER)
        await asyncio.sleep(0)  # the write happens at the end of the loop's iteration
    raise AssertionError("the connection never stopped taking output")


async def eventually_drained(server, client):
    await eventually(lambda: not server.hub.session(client.id).lossy, what="its queue drained", timeout=30)


@pytest.fixture
def stelar_transport():
    return "tcp"


async def test_conflation_keeps_the_last_value_of_each_key_for_a_stalled_member(stelar_server_factory):
    server = await stelar_server_factory(
        rooms={"ticker": {"send_queue": "conflate", "conflate_key": "symbol", "max_queue": 1000}},
        rate_limit=None,
        slow_consumer_timeout=60,
        max_buffered_bytes=256 * 1024,
    )
    fast = await connect_client(server, "tcp", client=TestClient(max_kept=200_000))
    stalled = await connect_client(server, "tcp", client=TestClient(max_kept=200_000))
    for client in (fast, stalled):
        assert (await client.join("ticker"))["ok"] is True
    await stall(server, stalled)
    updates = 100_000
    for n in range(updates):
        server.to("ticker", "price", {"symbol": f"S{n % 1000}", "n": n})
        if n % 100 == 99:
            await asyncio.sleep(0)  # the fast member reads as it goes
    queues = server.hub.session(stalled.id).lossy
    assert len(queues["ticker"].frames) == 1000  # bounded by the keys, not the updates
    await eventually(lambda: fast.events_received >= updates, what="the fast member got all", timeout=30)
    fast_prices = [event.data["n"] for event in fast.pending_events() if event.event == "price"]
    assert fast_prices == list(range(updates))

    stalled.resume_reading()
    await eventually_drained(server, stalled)
    server.to_id(stalled.id, "marker", None)  # sent after everything the queue held
    received = []

    def marker_arrived():
        received.extend(stalled.pending_events())
        return any(event.event == "marker" for event in received)

    await eventually(marker_arrived, what="the stalled member caught up", timeout=30)
    prices = [event.data for event in received if event.event == "price"]
    assert len(prices) == 1000
    # Each key once, in the order the keys first arrived, with its last value.
    assert [price["symbol"] for price in prices] == [f"S{k}" for k in range(1000)]
    assert [price["n"] for price in prices] == list(range(updates - 1000, updates))
    assert stalled.dropped == {"ticker": updates - 1000}
    stats = server.get_stats().counters
    assert stats["conflated_messages"] == updates - 1000 and stats["lossy_queued"] == 0


async def test_drop_oldest_keeps_the_newest_and_says_how_many_were_lost(stelar_server_factory):
    server = await stelar_server_factory(
        rooms={"log": {"send_queue": "drop_oldest", "max_queue": 50}},
        rate_limit=None,
        slow_consumer_timeout=60,
        max_buffered_bytes=256 * 1024,
    )
    stalled = await connect_client(server, "tcp", client=TestClient(max_kept=20_000))
    await stalled.join("log")
    await stall(server, stalled)
    for n in range(1000):
        server.to("log", "line", n)
    assert len(server.hub.session(stalled.id).lossy["log"].frames) == 50
    stalled.resume_reading()
    await eventually_drained(server, stalled)
    server.to_id(stalled.id, "marker", None)
    received = []

    def marker_arrived():
        received.extend(stalled.pending_events())
        return any(event.event == "marker" for event in received)

    await eventually(marker_arrived, what="caught up", timeout=30)
    assert [event.data for event in received if event.event == "line"] == list(range(950, 1000))
    assert stalled.dropped == {"log": 950}
    assert server.get_stats().counters["dropped_messages"] == 950


CURSORS = {"send_queue": "conflate", "conflate_key": "user", "max_rate": 2, "events": ["move"]}


async def test_max_rate_paces_a_member_and_the_policy_decides_what_waits(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(
        transports=["memory"],
        clock=clock,
        rate_limit=None,
        rooms={
            "cursor:*": {"send_queue": "conflate", "conflate_key": "user", "max_rate": 2, "events": ["move"]}
        },
    )
    client = await connect_client(server)
    await client.join("cursor:doc")
    for n in range(5):
        server.to("cursor:doc", "move", {"user": "ann", "x": n})
        server.to("cursor:doc", "move", {"user": "bob", "x": n})
    server.to("cursor:doc", "chat", "not paced")  # not one of the policy's events
    got = [await client.next_event() for _ in range(2)]
    assert [(e.event, e.data) for e in got] == [("move", {"user": "ann", "x": 0}), ("chat", "not paced")]
    clock.advance(0.5)  # one more may go: bob's latest
    assert (await client.next_event()).data == {"user": "bob", "x": 4}
    clock.advance(0.5)
    assert (await client.next_event()).data == {"user": "ann", "x": 4}
    assert client.dropped == {"cursor:doc": 7}  # ann 1..3 and bob 0..3 were replaced


def test_a_room_with_history_cannot_take_a_lossy_queue():
    with pytest.raises(ConfigError, match=r"rooms\['feed'\].*history cannot use send_queue = 'conflate'"):
        StelarServer(rooms={"feed": {"history_size": 10, "send_queue": "conflate"}})
    with pytest.raises(ConfigError, match=r"send_queue.*expected one of queue, drop_oldest, conflate"):
        StelarServer(rooms={"feed": {"send_queue": "latest"}})
    with pytest.raises(ConfigError, match="max_rate needs a lossy send_queue"):
        StelarServer(rooms={"feed": {"max_rate": 10}})
    with pytest.raises(ConfigError, match="conflate_key is for send_queue = 'conflate'"):
        StelarServer(rooms={"feed": {"conflate_key": "id"}})


async def test_a_client_may_not_send_dropped_notices(stelar_server_factory):
    server = await stelar_server_factory(transports=["memory"])
    client = await connect_client(server)
    client.send_raw(encode_frame(FrameType.DROPPED, "room", b'{"count": 1}'))
    code, body = await client.next_error()
    assert code == ErrorCode.INVALID_FRAME and "dropped notices" in body["message"]
