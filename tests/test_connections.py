"""Admission, the connect handshake, middleware, heartbeats, backpressure and bad input."""

import asyncio

import pytest

from stelar_core import ConnectionRefused, ErrorCode, NotConnected
from stelar_core.protocol import FrameType, dump_json
from stelar_core.testing import FakeClock, TestClient, connect_client


async def test_the_handshake_answers_id_version_heartbeat_and_max_payload(
    stelar_server_factory, stelar_client_factory
):
    server = await stelar_server_factory(heartbeat_interval=12.5, heartbeat_timeout=30, max_payload_size=1234)
    client = await stelar_client_factory(server)
    welcome = dict(client.welcome)
    resume = welcome.pop("resume")
    assert resume["window"] == 120.0 and isinstance(resume["token"], str) and len(resume["token"]) >= 16
    assert welcome == {"id": client.id, "v": 1, "heartbeat": 12.5, "max_payload": 1234}
    assert server.get_clients()[0].id == client.id


async def test_without_a_recovery_window_the_welcome_offers_no_resumption(
    stelar_server_factory, stelar_client_factory
):
    server = await stelar_server_factory(recovery_window=0)
    client = await stelar_client_factory(server)
    assert "resume" not in client.welcome


async def test_connection_callbacks_and_hooks_fire_with_the_client(
    stelar_server_factory, stelar_client_factory
):
    events = []
    server = await stelar_server_factory(
        hooks={
            "on_client_connect": lambda client_id, protocol: events.append(
                ("hook-connect", client_id, protocol)
            ),
            "on_client_disconnect": lambda client_id, rooms, code: events.append(
                ("hook-disconnect", client_id, sorted(rooms), code)
            ),
        }
    )
    gone = asyncio.Event()

    @server.on_connection
    async def welcome(ctx):
        events.append(("connected", ctx.id))
        ctx.emit("welcome", {"id": ctx.id})

    @server.on_disconnect
    def bye(ctx):
        events.append(("disconnected", ctx.id, ctx.data["code"]))
        gone.set()

    client = await stelar_client_factory(server)
    assert (await client.next_event()).data == {"id": client.id}
    await client.join("r")
    client.close(1000, "bye")
    await asyncio.wait_for(gone.wait(), 5)
    assert events == [
        ("hook-connect", client.id, "memory"),
        ("connected", client.id),
        ("hook-disconnect", client.id, ["r"], 1000),
        ("disconnected", client.id, 1000),
    ]


async def test_max_connections_refuses_the_next_and_fires_the_hook(
    stelar_server_factory, stelar_client_factory
):
    reached = []
    server = await stelar_server_factory(
        max_connections=2,
        hooks={
            "on_max_connections_reached": lambda active_connections, max_connections, scope: reached.append(
                (active_connections, max_connections, scope)
            )
        },
    )
    first = await stelar_client_factory(server, local_address="10.0.0.1")
    await stelar_client_factory(server, local_address="10.0.0.2")
    with pytest.raises(ConnectionRefused) as info:
        await connect_client(server, local_address="10.0.0.3")
    assert info.value.code == ErrorCode.SERVER_FULL
    assert info.value.close_code == 1013
    assert reached == [(2, 2, "global")]
    assert server.get_stats().refused_connections == {ErrorCode.SERVER_FULL: 1}
    first.close()
    await first.wait_closed()
    await stelar_client_factory(server, local_address="10.0.0.3")


async def test_max_connections_per_ip(stelar_server_factory, stelar_client_factory):
    reached = []
    server = await stelar_server_factory(
        max_connections_per_ip=2,
        hooks={
            "on_max_connections_reached": lambda ip, scope, active_connections: reached.append(
                (ip, scope, active_connections)
            )
        },
    )
    a = await stelar_client_factory(server, local_address="192.0.2.1")
    await stelar_client_factory(server, local_address="192.0.2.1")
    with pytest.raises(ConnectionRefused) as info:
        await connect_client(server, local_address="192.0.2.1")
    assert info.value.code == ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP
    await stelar_client_factory(server, local_address="192.0.2.2")  # another IP is fine
    assert reached == [("192.0.2.1", "ip", 2)]
    a.close()
    await a.wait_closed()
    await stelar_client_factory(server, local_address="192.0.2.1")
    assert server.hub.ip_tracker.count("192.0.2.1") == 2


async def test_connections_still_in_handshake_count_against_the_limit(stelar_server_factory):
    server = await stelar_server_factory(max_connections=1)
    await connect_client(server, handshake=False)
    with pytest.raises(ConnectionRefused):
        await connect_client(server)


async def test_no_connect_frame_within_connect_timeout_closes(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(connect_timeout=0.05, clock=clock)
    client = await connect_client(server, handshake=False)
    clock.advance(0.049)
    assert server.get_stats().refused_connections == {}
    clock.advance(0.001)
    code, reason = await client.wait_closed()
    assert code == 1008 and "no connect frame within 0.05s" in reason
    assert (await client.next_error())[0] == ErrorCode.CONNECT_TIMEOUT
    assert server.hub.ip_tracker.count("memory") == 0


async def test_a_frame_before_connect_is_refused(stelar_server):
    client = await connect_client(stelar_server, handshake=False)
    client.emit("too-early")
    code, body = await client.next_error()
    assert code == ErrorCode.NOT_CONNECTED and "expected a connect frame first, got JSON" in body["message"]
    assert (await client.wait_closed())[0] == 1008


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"{not json", ErrorCode.INVALID_JSON), (dump_json({"auth": "secret"}), ErrorCode.INVALID_FRAME)],
)
async def test_a_malformed_connect_frame_is_refused(stelar_server, payload, code):
    client = await connect_client(stelar_server, handshake=False)
    client.send_frame(FrameType.CONNECT, payload=payload)
    assert (await client.next_error())[0] == code
    assert (await client.wait_closed())[0] == 1002


async def test_middleware_sees_auth_and_can_accept(stelar_server, stelar_client_factory):
    @stelar_server.use
    def authenticate(ctx, next):
        if ctx.auth.get("token") == "good":
            ctx.set_metadata("user", "ann")
            next()

    @stelar_server.use
    async def log_it(ctx, next):
        await next()

    @stelar_server.on_connection
    def greet(ctx):
        ctx.emit("hello", ctx.get_metadata("user"))

    client = await stelar_client_factory(stelar_server, auth={"token": "good"})
    assert (await client.next_event()).data == "ann"


@pytest.mark.parametrize(
    ("middleware", "message"),
    [
        (lambda ctx, next: None, "connection refused by middleware"),
        (lambda ctx, next: ctx.reject("Token required"), "Token required"),
        (lambda ctx, next: 1 / 0, "connection refused: division by zero"),
    ],
)
async def test_middleware_rejection_reaches_the_client_as_an_error(stelar_server, middleware, message):
    stelar_server.use(middleware)
    with pytest.raises(NotConnected) as info:
        await connect_client(stelar_server, auth={"token": "bad"})
    assert ErrorCode.UNAUTHORIZED in str(info.value) and message in str(info.value)
    assert stelar_server.get_stats().active_connections == 0
    assert stelar_server.get_stats().refused_connections == {ErrorCode.UNAUTHORIZED: 1}


async def test_silent_peers_are_dropped_after_heartbeat_timeout(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(heartbeat_interval=30, heartbeat_timeout=60, clock=clock)
    silent = await connect_client(server, client=TestClient(auto_pong=False))
    lively = await connect_client(server)
    clock.advance(30)  # first sweep: both pinged, neither silent for 60 s yet
    await silent.wait_until(lambda: silent.pings_received == 1)
    await lively.wait_until(lambda: lively.pings_received == 1)
    await lively.join("after-pong")  # a round trip: the server has read the pong before it
    clock.advance(30)  # silent for exactly 60 s: not yet past the timeout
    await lively.join("second-round-trip")
    assert not silent.closed.done()
    clock.advance(30)
    code, reason = await silent.wait_closed()
    assert (code, reason) == (1011, "heartbeat timeout")
    assert not lively.closed.done()
    assert [c.id for c in server.get_clients()] == [lively.id]


async def test_a_client_ping_gets_a_pong_with_its_payload(stelar_server, stelar_client):
    stelar_client.send_frame(FrameType.PING, payload=b"t1")
    await stelar_client.wait_until(lambda: stelar_client.pongs == [b"t1"])


async def test_a_full_inbox_pauses_reading_and_loses_nothing(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(max_queued_messages=4, rate_limit=None)
    release = asyncio.Event()
    handled = []

    @server.on("work")
    async def work(ctx):
        if ctx.data == 0:
            await release.wait()
        handled.append(ctx.data)
        if ctx.data == 19:
            ctx.emit("done")

    client = await stelar_client_factory(server)
    (connection,) = server.transports[0].connections
    paused = asyncio.Event()
    pause_reading = connection.pause_reading

    def record_pause():
        pause_reading()
        paused.set()

    connection.pause_reading = record_pause
    for n in range(20):
        client.emit("work", n)
    await asyncio.wait_for(paused.wait(), 5)
    # All 20 deliveries were queued on the loop before the pause woke us, so they have run:
    # one frame is being handled, four wait in the hub's inbox, the rest wait in the transport.
    assert len(connection._held) == 20 - 1 - 4
    release.set()
    await client.next_event()
    assert handled == list(range(20))
    assert not connection._paused


async def test_what_a_peer_sends_while_paused_is_bounded(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(max_queued_messages=1, max_buffered_bytes=1024, rate_limit=None)
    release = asyncio.Event()

    @server.on("work")
    async def work(ctx):
        await release.wait()

    server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    flooder = await stelar_client_factory(server)
    bystander = await stelar_client_factory(server)
    for _ in range(50):
        flooder.emit("work", "x" * 100)
    code, reason = await flooder.wait_closed()
    assert (code, reason) == (1008, "sent too much while the server was not reading")
    assert server.get_stats().counters == {"inbound_overflow": 1}
    release.set()
    bystander.emit("echo", "fine")
    assert (await bystander.next_event()).data == "fine"
    assert [c.id for c in server.get_clients()] == [bystander.id]
