"""Presence (docs/presence.md): members by presence key, snapshots and numbered batched diffs,
the grace before a leave, counts only past the list limit, bad input."""

import asyncio

import pytest

from stelar_core import ErrorCode, StelarClient
from stelar_core.protocol import FrameType, encode_frame
from stelar_core.testing import FakeClock, connect_client, eventually

ROOMS = {
    "doc:*": {"presence": True},
    "big": {"presence": True, "presence_max_members": 2},
    "stage": {"presence": True, "presence_counts_only": True, "presence_member_cap": 2},
}


async def presence_server(factory, clock, **options):
    server = await factory(rooms=ROOMS, clock=clock, presence_interval=1.0, presence_grace=5.0, **options)

    @server.use
    def user(ctx, next):
        if "user" in ctx.auth:
            ctx.presence_key = ctx.auth["user"]
        next()

    return server


async def changes(client, count):
    await client.wait_until(lambda: len(client.presence_changes) >= count)
    return [(c.snapshot, c.count, c.joins, list(c.leaves), c.updates) for c in client.presence_changes]


async def test_a_user_with_two_connections_is_one_member_and_leaves_once_after_the_grace(
    stelar_server_factory,
):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    watcher = await connect_client(server, auth={"user": "eve"})
    await watcher.join("doc:1")
    phone = await connect_client(server, auth={"user": "ann"})
    laptop = await connect_client(server, auth={"user": "ann"})
    await phone.join("doc:1")
    await laptop.join("doc:1")
    assert server.presence("doc:1") == {"eve": None, "ann": None} and server.get_presence_count("doc:1") == 2
    clock.advance(1.0)  # one diff for ann, however many connections she has
    seen = await changes(watcher, 2)
    # The first diff tells every join of its interval, eve's own too (her snapshot came first).
    assert seen == [(True, 1, {"eve": None}, [], {}), (False, 2, {"ann": None, "eve": None}, [], {})]
    phone.close()
    await phone.wait_closed()
    clock.advance(10)  # past the grace: ann is still here on her laptop
    assert server.presence("doc:1") == {"eve": None, "ann": None}
    laptop.close()
    await laptop.wait_closed()
    clock.advance(1.0)
    assert server.presence("doc:1") == {"eve": None, "ann": None}  # within the grace
    clock.advance(5.0)
    seen = await changes(watcher, 3)
    assert seen[2] == (False, 1, {}, ["ann"], {})
    assert server.presence("doc:1") == {"eve": None}
    assert [c.snapshot for c in watcher.presence_changes] == [True, False, False]  # nothing else


async def test_a_reconnect_within_the_grace_shows_no_event(stelar_server_factory):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    watcher = await connect_client(server, auth={"user": "eve"})
    await watcher.join("doc:1")
    first = await connect_client(server, auth={"user": "ann"})
    await first.join("doc:1")
    clock.advance(1.0)
    await changes(watcher, 2)
    first.close()
    await first.wait_closed()
    clock.advance(2.0)
    again = await connect_client(server, auth={"user": "ann"})
    await again.join("doc:1")  # back within the grace
    for _ in range(10):
        clock.advance(1.0)
    # A change after it: its diff comes next, and nothing came between (diffs are numbered, so a
    # leave or join told meanwhile would be in it or before it).
    watcher.send_frame(FrameType.PRESENCE, "doc:1", b'{"state": "here"}')
    await eventually(lambda: server.presence("doc:1")["eve"] == "here", what="eve's state")
    clock.advance(1.0)
    seen = await changes(watcher, 3)
    assert seen[2:] == [(False, 2, {}, [], {"eve": "here"})]
    assert server.presence("doc:1") == {"eve": "here", "ann": None}


async def test_state_updates_are_batched_into_one_numbered_diff(stelar_server_factory):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    ann = await connect_client(server, auth={"user": "ann"})
    await ann.join("doc:1")
    for x in range(5):
        ann.send_frame(FrameType.PRESENCE, "doc:1", b'{"state": {"x": %d}}' % x)
    await eventually(lambda: server.presence("doc:1") == {"ann": {"x": 4}}, what="the last state")
    clock.advance(1.0)
    seen = await changes(ann, 2)
    assert seen == [(True, 1, {"ann": None}, [], {}), (False, 1, {"ann": {"x": 4}}, [], {})]
    # The diff says it is a join (ann arrived in this interval) with her latest state.


async def test_past_the_list_limit_only_the_count_is_told(stelar_server_factory):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    clients = [await connect_client(server, auth={"user": f"u{n}"}) for n in range(3)]
    for client in clients:
        await client.join("big")
    clock.advance(1.0)
    seen = await changes(clients[0], 2)
    assert seen[0] == (True, 1, {"u0": None}, [], {})
    assert seen[1] == (False, 3, {}, [], {})  # counts only: three is past the limit of two
    assert server.get_presence_count("big") == 3


async def test_counts_only_on_demand_and_a_member_cap(stelar_server_factory):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    a, b, c = [await connect_client(server, auth={"user": f"u{n}"}) for n in range(3)]
    assert (await a.join("stage"))["ok"] and (await b.join("stage"))["ok"]
    refused = await c.join("stage")
    assert refused["error"]["code"] == ErrorCode.PRESENCE_FULL and "2 members" in refused["error"]["message"]
    second = await connect_client(server, auth={"user": "u0"})
    assert (await second.join("stage"))["ok"]  # u0 is a member already: not one more
    seen = await changes(a, 1)
    assert seen[0] == (True, 1, {}, [], {})  # counts only, even with one member


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (b'{"state": "' + b"x" * 2000 + b'"}', ErrorCode.NO_PRESENCE, "at most 1024"),
        (b"{", ErrorCode.INVALID_JSON, "not valid JSON"),
        (b'{"what": 1}', ErrorCode.INVALID_FRAME, "presence frame is"),
    ],
)
async def test_bad_presence_frames_are_refused_by_name(stelar_server_factory, payload, code, words):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    client = await connect_client(server)
    await client.join("doc:1")
    client.send_raw(encode_frame(FrameType.PRESENCE, "doc:1", payload))
    got, body = await client.next_error()
    assert got == code and words in body["message"]
    assert server.get_stats().invalid_messages == 1
    assert server.presence("doc:1") == {client.id: None}  # and it carries on


async def test_an_update_to_a_room_one_is_not_in_is_refused(stelar_server_factory):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    client = await connect_client(server)
    client.send_raw(encode_frame(FrameType.PRESENCE, "doc:9", b'{"state": 1}'))
    code, body = await client.next_error()
    assert code == ErrorCode.NO_PRESENCE and "not in presence room 'doc:9'" in body["message"]


async def test_a_flood_of_updates_is_rate_limited_like_events(stelar_server_factory):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock, rate_limit={"max_points": 3, "window": 60})
    client = await connect_client(server)
    await client.join("doc:1")  # one point
    for x in range(5):
        client.send_raw(encode_frame(FrameType.PRESENCE, "doc:1", b'{"state": %d}' % x))
    code, _ = await client.next_error()
    assert code == ErrorCode.RATE_LIMITED and server.get_stats().rate_limited >= 1


@pytest.fixture(params=["tcp", "ws"])
def stelar_transport(request):
    return request.param


async def test_many_clients_agree_on_the_members_and_the_traffic_stays_linear(stelar_server_factory):
    server = await stelar_server_factory(
        rooms=ROOMS, presence_interval=0.05, presence_grace=0.05, rate_limit=None, max_connections_per_ip=500
    )
    url = next(iter(server.addresses.values()))[0]
    clients = [StelarClient(url, reconnection=False) for _ in range(100)]
    frames = [0] * len(clients)
    for index, client in enumerate(clients):
        client.on("presence", lambda change, index=index: frames.__setitem__(index, frames[index] + 1))
    try:
        await asyncio.gather(*(client.connect() for client in clients))
        await asyncio.gather(*(client.join_room("doc:1") for client in clients))
        for client in clients[:20]:
            client.update_presence("doc:1", {"typing": True})
        await clients[0].disconnect()

        def agreed():
            truth = server.presence("doc:1")
            return len(truth) == 99 and all(c.presence("doc:1") == truth for c in clients[1:])

        await eventually(agreed, what="every member map equals the server's")
        # Far below N squared: a snapshot and a handful of batched diffs each.
        assert max(frames[1:]) < 40 and sum(frames) < 100 * 40
    finally:
        for client in clients:
            await client.disconnect()


async def test_a_resumed_session_is_back_in_its_presence_room_without_an_event(stelar_server_factory):
    server = await stelar_server_factory(rooms=ROOMS, presence_interval=0.05, presence_grace=2.0)
    url = next(iter(server.addresses.values()))[0]
    watcher, ann = StelarClient(url), StelarClient(url, reconnection_delay=0.001, random=lambda: 0.0)
    seen = []
    watcher.on("presence", seen.append)
    try:
        await watcher.connect()
        await watcher.join_room("doc:1")
        await ann.connect()
        await ann.join_room("doc:1")
        await eventually(lambda: len(watcher.presence("doc:1")) == 2, what="ann seen")
        before = len(seen)
        server.hub.session(ann.id).connection._stream().abort()
        await eventually(lambda: ann.connected and ann.resumed, what="resumed")
        await eventually(lambda: ann.presence("doc:1").keys() == {ann.id, watcher.id}, what="her snapshot")
        # A change after the resume: its diff comes next, and nothing came between (diffs are
        # numbered, so a leave or join sent meanwhile would be in it or before it).
        ann.update_presence("doc:1", {"back": True})
        await eventually(lambda: len(seen) > before, what="the next diff")
        assert seen[before:] == [
            {
                "room": "doc:1",
                "count": 2,
                "joins": {},
                "leaves": [],
                "updates": {ann.id: {"back": True}},
                "snapshot": False,
            }
        ]
    finally:
        await ann.disconnect()
        await watcher.disconnect()


async def test_the_presence_hooks_see_first_joins_and_last_leaves(stelar_server_factory):
    clock = FakeClock()
    told = []
    hooks = {
        "on_presence_join": lambda room, key: told.append(("join", room, key)),
        "on_presence_leave": lambda room, key: told.append(("leave", room, key)),
    }
    server = await presence_server(stelar_server_factory, clock, hooks=hooks)
    phone, laptop = [await connect_client(server, auth={"user": "ann"}) for _ in range(2)]
    await phone.join("doc:1")
    await laptop.join("doc:1")
    await phone.leave("doc:1")
    await laptop.leave("doc:1")
    clock.advance(6.0)
    assert told == [("join", "doc:1", "ann"), ("leave", "doc:1", "ann")]
    assert server.presence("doc:1") == {}


async def test_a_client_that_asks_gets_a_snapshot_numbered_like_the_diffs(stelar_server_factory):
    clock = FakeClock()
    server = await presence_server(stelar_server_factory, clock)
    ann = await connect_client(server, auth={"user": "ann"})
    await ann.join("doc:1")
    bob = await connect_client(server, auth={"user": "bob"})
    await bob.join("doc:1")
    clock.advance(1.0)
    await changes(ann, 2)
    ann.send_frame(FrameType.PRESENCE, "doc:1", b'{"snapshot": true}')
    seen = await changes(ann, 3)
    assert seen[2] == (True, 2, {"ann": None, "bob": None}, [], {})
    assert ann.presence_changes[2].snapshot and ann.session.presence["doc:1"] == {"ann": None, "bob": None}
