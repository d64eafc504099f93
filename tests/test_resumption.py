"""Resuming a session after a dropped connection (docs/delivery.md): same ID, metadata and rooms,
nothing sent lost or handled twice, requests answered once even when the answer was lost."""

import asyncio

import pytest

from stelar_core import ErrorCode, StelarClient
from stelar_core.protocol import FrameType, dump_json, encode_frame
from stelar_core.testing import FakeClock, connect_client, eventually
from stelar_core.testing.drops import drop_session


def client_of(server, **options):
    options = {"reconnection_delay": 0.001, "random": lambda: 0.0, "reconnection_attempts": None, **options}
    return StelarClient(next(iter(server.addresses.values()))[0], **options)


@pytest.fixture(params=["tcp", "ws"])
def stelar_transport(request):
    return request.param


async def test_a_resumed_session_keeps_its_id_metadata_and_rooms(stelar_server_factory):
    seen = []
    server = await stelar_server_factory()

    @server.use
    def remember(ctx, next):
        seen.append((ctx.id, ctx.recovered, dict(ctx.metadata)))
        ctx.set_metadata("user", ctx.auth.get("user"))
        next()

    server.on("enter", lambda ctx: ctx.join_room("side"))
    client = client_of(server, auth={"user": "ann"})
    await client.connect()
    first_id = client.id
    await client.join_room("lobby")
    client.emit("enter")
    await eventually(lambda: server.get_room_members("side"), what="joined by the server")
    drop_session(server, first_id)
    await eventually(lambda: client.connected and client.resumed, what="resumed")
    try:
        assert client.id == first_id
        assert seen == [(first_id, False, {}), (first_id, True, {"user": "ann"})]
        assert sorted(server.get_clients()[0].rooms) == ["lobby", "side"]  # the server's join too
        assert server.get_stats().recoveries["session_resumed"] == 1
    finally:
        await client.disconnect()


async def test_requests_whose_answers_were_lost_run_once_and_all_resolve(stelar_server_factory):
    server = await stelar_server_factory(rate_limit=None)
    runs = []

    @server.on_ack("work")
    def work(ctx):
        runs.append(ctx.data)
        if ctx.data % 25 == 0:
            drop_session(server, ctx.id)  # the handler ran; its answer will not arrive
        return ctx.data * 2

    client = client_of(server, ack_timeout=20)
    await client.connect()
    answers = []
    try:
        for wave in range(20):  # 25 requests in flight at a time, and one drop in each wave
            numbers = range(wave * 25, wave * 25 + 25)
            answers += await asyncio.gather(*(client.request("work", n) for n in numbers))
    finally:
        await client.disconnect()
    assert answers == [n * 2 for n in range(500)]
    assert sorted(runs) == list(range(500))  # each handler ran exactly once
    stats = server.get_stats()
    assert stats.recoveries["session_resumed"] >= 20 and stats.counters["answers_resent"] >= 20


async def test_events_sent_across_drops_are_handled_once_in_order(stelar_server_factory):
    server = await stelar_server_factory(rate_limit=None)
    got = []
    server.on("n", lambda ctx: got.append(ctx.data))
    client = client_of(server, message_queue_size=1000)  # room for all while offline
    await client.connect()
    try:
        for n in range(1000):
            client.emit("n", n)
            if n % 100 == 50:
                await eventually(lambda: client.connected and server.hub.session(client.id), what="back")
                drop_session(server, client.id)
                await asyncio.sleep(0)  # let the drop be seen, so the next ones queue offline
        await eventually(lambda: len(got) >= 1000 and client.connected, what="all handled")
    finally:
        await client.disconnect()
    assert got == list(range(1000))
    assert client.dropped_messages == 0 and server.get_stats().recoveries["session_resumed"] >= 5


async def test_only_a_dropped_connection_leaves_a_session_to_resume(stelar_server_factory):
    server = await stelar_server_factory()
    client = client_of(server)
    await client.connect()
    await client.disconnect()  # a goodbye: the client is not coming back for it
    kicked = await connect_client(server)
    server.disconnect(kicked.id)  # a kick: not to be undone by reconnecting
    await eventually(lambda: server.get_clients() == [], what="both gone")
    assert len(server.hub.resumption) == 0
    dropped = await connect_client(server)
    drop_session(server, dropped.id)
    await eventually(lambda: len(server.hub.resumption) == 1, what="the dropped one kept")


async def test_a_wrong_token_or_an_unknown_session_starts_a_new_one(stelar_server_factory):
    server = await stelar_server_factory()
    first = await connect_client(server)
    first_id = first.id
    drop_session(server, first_id)
    await first.wait_closed()
    for resume in ({"id": first_id, "token": "not-the-token"}, {"id": "nobody", "token": "x"}):
        other = await connect_client(server, auth=None, handshake=False)
        other.send_raw(encode_frame(FrameType.CONNECT, "", dump_json({"auth": {}, "resume": resume})))
        welcome = await asyncio.wait_for(other.connected, 5)
        assert welcome["id"] != first_id and "resumed" not in welcome
        other.close()
    assert server.get_stats().recoveries["session_not_resumed"] == 2


@pytest.mark.parametrize(
    ("resume", "message"),
    [
        ("yes", "resume must be"),
        ({"id": "", "token": "t"}, "resume.id must be"),
        ({"id": "a", "token": 5}, "resume.token must be"),
        ({"id": "a", "token": "t", "waiting": [-1]}, "resume.waiting must be"),
        ({"id": "a", "token": "t", "waiting": list(range(2000))}, "resume.waiting must be"),
    ],
)
async def test_a_malformed_resume_is_refused_by_name(stelar_server_factory, resume, message):
    server = await stelar_server_factory()
    client = await connect_client(server, handshake=False)
    client.send_raw(encode_frame(FrameType.CONNECT, "", dump_json({"auth": {}, "resume": resume})))
    code, body = await client.next_error()
    assert code == ErrorCode.INVALID_FRAME and message in body["message"]
    assert (await client.wait_closed())[0] == 1002
    assert (await connect_client(server)).id  # the server carries on


async def test_unresumed_sessions_expire_and_are_bounded(stelar_server_factory):
    clock = FakeClock()
    expired = []
    server = await stelar_server_factory(
        clock=clock,
        recovery_window=10,
        max_resumable_sessions=2,
        hooks={"on_session_expired": lambda client_id, metadata: expired.append(client_id)},
    )
    clients = [await connect_client(server) for _ in range(3)]
    ids = [client.id for client in clients]
    for client in clients:
        drop_session(server, client.id)
        await client.wait_closed()
    await eventually(lambda: server.get_clients() == [], what="all three gone")
    assert len(server.hub.resumption) == 2  # the first went to make room, as if expired
    clock.advance(11)
    server.hub.resumption.sweep()
    assert len(server.hub.resumption) == 0
    assert expired == ids
    assert server.get_stats().counters["sessions_expired"] == 3
