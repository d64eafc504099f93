"""StelarClient against real servers over WebSocket and TCP."""

import asyncio
import io

import pytest

from stelar_core import (
    AckError,
    AckTimeout,
    ConfigError,
    NotConnected,
    RemoteError,
    StelarClient,
    StelarServer,
)
from stelar_core.client import full_jitter_delay, parse_file
from stelar_core.client.client import normalize_url
from stelar_core.testing import FakeClock


@pytest.fixture(params=["ws", "tcp"])
def stelar_transport(request):
    return request.param


@pytest.fixture
async def server(stelar_server_factory):
    server = await stelar_server_factory(rate_limit=None)
    server.on_ack("add", lambda ctx: ctx.data[0] + ctx.data[1])
    server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    return server


@pytest.fixture
async def client_factory():
    clients = []

    async def make(url, **options):
        client = StelarClient(url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.disconnect()


def url_of(server):
    return next(iter(server.addresses.values()))[0]


async def next_item(queue, timeout=5):
    return await asyncio.wait_for(queue.get(), timeout)


# ---------------------------------------------------------------- connecting


def test_urls_and_short_forms():
    assert normalize_url("ws://h:1/x", None) == "ws://h:1/x"
    assert normalize_url("localhost:3000", None) == "ws://localhost:3000/"
    assert normalize_url(3000, None) == "ws://localhost:3000/"
    assert normalize_url("3001", "tcp") == "tcp://localhost:3001"
    assert normalize_url("api.internal:3001", "tcp") == "tcp://api.internal:3001"
    assert normalize_url("tcps://h:1", "tcp") == "tcps://h:1"
    with pytest.raises(ConfigError, match="does not match the URL"):
        normalize_url("ws://h:1/", "tcp")


async def test_connect_state_metrics_and_clean_disconnect(server, client_factory):
    changes = []
    before = asyncio.all_tasks()
    client = await client_factory(
        url_of(server), hooks={"on_state_change": lambda from_state, to_state: changes.append(to_state)}
    )
    assert client.state == "disconnected" and not client.connected
    await client.connect()
    assert client.connected and client.id and client.connect_time
    assert server.get_clients()[0].id == client.id
    assert await client.request("add", [1, 2]) == 3
    assert client.messages_sent == 1 and client.messages_received == 2  # the request; welcome and answer
    await client.disconnect()
    assert changes == ["connecting", "connected", "disconnected"]
    assert asyncio.all_tasks() == before
    assert client._link.watchdog is None and client._channel.link is None


async def test_async_with(server):
    async with StelarClient(url_of(server)) as client:
        assert client.connected
    assert client.state == "disconnected"


async def test_connecting_nowhere_without_reconnection_fails(unused_tcp_port, stelar_transport):
    url = f"{stelar_transport}://127.0.0.1:{unused_tcp_port}" + ("/" if stelar_transport == "ws" else "")
    client = StelarClient(url, reconnection=False)
    with pytest.raises(NotConnected, match="could not connect"):
        await client.connect()
    assert isinstance(client.last_error, OSError)


async def test_auth_and_headers_reach_the_middleware(server, client_factory, stelar_transport):
    seen = {}

    @server.use
    def check(ctx, next):
        seen["auth"] = ctx.auth
        seen["header"] = ctx.req.headers.get("x-app") if ctx.req else None
        next()

    client = await client_factory(url_of(server), auth={"token": "t"}, headers={"X-App": "tests"})
    await client.connect()
    assert seen == {"auth": {"token": "t"}, "header": "tests" if stelar_transport == "ws" else None}


# ---------------------------------------------------------------- sending and receiving


async def test_emit_binary_file_and_listeners(server, client_factory, tmp_path):
    files = []
    server.on("file", lambda ctx: files.append(parse_file(ctx.data)))
    server.on("blob", lambda ctx: ctx.emit_binary("blob", ctx.data[::-1]))
    client = await client_factory(url_of(server))
    got = asyncio.Queue()
    client.on("echo", got.put_nowait)

    @client.on("blob")
    async def blob(data):
        await got.put(data)

    everything = []
    client.on_any(lambda event, data: everything.append(event))
    await client.connect()
    client.emit("echo", {"a": 1})
    assert await next_item(got) == {"a": 1}
    client.emit_binary("blob", b"\x01\x02")
    assert await next_item(got) == b"\x02\x01"
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG" + b"x" * 100)
    client.send_file(path)
    client.send_file(io.BytesIO(b"hello"), name="note.txt", event="file")
    assert await client.request("add", [0, 0]) == 0  # ordered after the files
    assert [(f.name, f.size, f.content_type) for f in files] == [
        ("photo.png", 104, "image/png"),
        ("note.txt", 5, "text/plain"),
    ]
    assert files[1].content == b"hello"
    assert everything == ["echo", "blob"]


async def test_once_off_and_remove_all_listeners(server, client_factory):
    client = await client_factory(url_of(server))
    calls = []
    client.once("echo", lambda data: calls.append(("once", data)))
    handler = client.on("echo", lambda data: calls.append(("on", data)))
    await client.connect()
    client.emit("echo", 1)
    client.emit("echo", 2)
    await client.request("add", [0, 0])  # answered after both echoes: frames arrive in order
    assert calls == [("once", 1), ("on", 1), ("on", 2)]
    client.off("echo", handler)
    client.emit("echo", 3)
    client.on("echo", lambda data: calls.append(("new", data)))
    client.remove_all_listeners("echo")
    client.emit("echo", 4)
    await client.request("add", [0, 0])
    assert calls == [("once", 1), ("on", 1), ("on", 2)]


async def test_off_removes_a_listener_added_with_once(server, client_factory):
    client = await client_factory(url_of(server))
    calls = []

    def listener(data):
        calls.append(data)

    client.once("echo", listener)
    client.off("echo", listener)
    await client.connect()
    client.emit("echo", 1)
    await client.request("add", [0, 0])  # answered after the echo
    assert calls == []


async def test_requests_errors_timeouts_and_many_in_flight(server, client_factory):
    @server.on_ack("fail")
    def fail(ctx):
        raise PermissionError("not yours")

    release = asyncio.Event()

    @server.on_ack("slow")
    async def slow(ctx):
        await release.wait()

    clock = FakeClock()
    client = await client_factory(url_of(server), clock=clock)
    await client.connect()
    assert await asyncio.gather(*(client.request("add", [n, n]) for n in range(100))) == [
        2 * n for n in range(100)
    ]
    with pytest.raises(AckError) as info:
        await client.request("fail")
    assert (info.value.code, info.value.message) == ("handler_error", "not yours")
    timers = clock.pending  # the heartbeat watchdog's
    slow_request = asyncio.ensure_future(client.request("slow", timeout=0.05))
    await clock.wait_for_timers(timers + 1)  # the request's timeout is scheduled
    clock.advance(0.05)
    with pytest.raises(AckTimeout, match=r"no answer to request 'slow' within 0\.05s"):
        await slow_request
    release.set()


async def test_pending_requests_fail_on_disconnect(server, client_factory):
    release = asyncio.Event()
    arrived = asyncio.Event()

    @server.on_ack("hang")
    async def hang(ctx):
        arrived.set()
        await release.wait()

    client = await client_factory(url_of(server))
    await client.connect()
    pending = asyncio.ensure_future(client.request("hang", timeout=30))
    await asyncio.wait_for(arrived.wait(), 5)
    await client.disconnect()
    with pytest.raises(NotConnected):
        await pending
    release.set()


async def test_the_server_asks_the_client(server, client_factory):
    client = await client_factory(url_of(server))

    @client.on_ack("confirm")
    async def confirm(data):
        return f"yes to {data}"

    await client.connect()
    assert await server.request(client.id, "confirm", "terms") == "yes to terms"
    with pytest.raises(AckError, match="no_handler"):
        await server.request(client.id, "unknown")


async def test_rooms_report_acceptance(stelar_server_factory, client_factory):
    server = await stelar_server_factory(hooks={"on_client_join_room": lambda room: room != "vip" and None})
    client = await client_factory(url_of(server))
    await client.connect()
    assert (await client.join_room("lobby")).ok is True
    assert (await client.join_room("vip")).ok is False
    assert client.rooms == {"lobby"}
    assert await client.leave_room("lobby") is True
    assert client.rooms == frozenset() and server.get_rooms() == []


async def test_hooks(server, client_factory):
    seen = []
    errored = asyncio.Event()
    client = await client_factory(
        url_of(server),
        hooks={
            "on_before_emit": lambda event, data: False if event == "debug" else None,
            "on_message": lambda event, data, is_binary: seen.append(("message", event, is_binary)),
            "on_message_queued": lambda event, queue_size: seen.append(("queued", event, queue_size)),
            "on_queue_drained": lambda count: seen.append(("drained", count)),
            "on_error": lambda error, context: (
                seen.append(("error", type(error).__name__, context)) or errored.set()
            ),
        },
    )
    assert client.emit("echo", "early") is True
    assert client.emit("debug", "never") is False
    await client.connect()
    await client.request("add", [0, 0])  # the echo of "early" arrives before this answer
    assert seen == [("queued", "echo", 1), ("drained", 1), ("message", "echo", False)]
    client.emit("", "an empty event name")  # the server answers with an error frame
    await asyncio.wait_for(errored.wait(), 5)
    assert ("error", "RemoteError", "server") in seen
    assert isinstance(client.last_error, RemoteError) and client.last_error.code == "invalid_event"


async def test_options_are_validated_and_updatable(server):
    with pytest.raises(ConfigError, match="unknown client option 'reconection'; did you mean 'reconnection'"):
        StelarClient(url_of(server), reconection=True)
    with pytest.raises(ConfigError, match="option 'message_queue_size' = -1"):
        StelarClient(url_of(server), message_queue_size=-1)
    with pytest.raises(ConfigError, match="unknown client hook 'onMessage'"):
        StelarClient(url_of(server), hooks={"onMessage": print})
    client = StelarClient(url_of(server), ack_timeout=2.0)
    client.update_options(ack_timeout=9.0, message_queue_size=5)
    assert client.get_options()["ack_timeout"] == 9.0 and client.get_options()["message_queue_size"] == 5
    with pytest.raises(ConfigError):
        client.update_options(ack_timeout=0)
    assert client.get_options()["ack_timeout"] == 9.0
    client.url = "ws://127.0.0.1:1/"
    assert client.url == "ws://127.0.0.1:1/"


# ---------------------------------------------------------------- offline queue and reconnection


async def test_a_full_queue_drops_the_oldest_and_counts(server, client_factory):
    received = []
    server.on("n", lambda ctx: received.append(ctx.data))
    client = await client_factory(url_of(server), message_queue_size=3)
    for n in range(5):
        client.emit("n", n)
    assert (client.queue_size, client.dropped_messages) == (3, 2)
    await client.connect()
    await client.request("add", [0, 0])
    assert received == [2, 3, 4]


async def test_an_offline_request_honours_its_timeout(unused_tcp_port, stelar_transport):
    url = f"{stelar_transport}://127.0.0.1:{unused_tcp_port}" + ("/" if stelar_transport == "ws" else "")
    clock = FakeClock()
    client = StelarClient(url, clock=clock)
    request = asyncio.ensure_future(client.request("add", [1, 1], timeout=0.05))
    await clock.wait_for_timers(1)
    clock.advance(0.05)
    with pytest.raises(AckTimeout):
        await request
    assert client.queue_size == 1  # still there, skipped when drained
    await client.disconnect()
    assert client.queue_size == 0


async def test_reconnects_to_a_restarted_server_rejoins_and_delivers_the_queue_once_in_order(
    stelar_transport,
):
    listen = {"ws": {"port": 0}, "tcp": {"port": None, "tcp_port": 0}}[stelar_transport]
    first = StelarServer(host="127.0.0.1", **listen)
    await first.start()
    port = first.get_port()
    same_port = {"ws": {"port": port}, "tcp": {"port": None, "tcp_port": port}}[stelar_transport]
    received = []
    first.on("n", lambda ctx: received.append(("first", ctx.data)))
    first.on_ack("sync", lambda ctx: True)
    server_back = asyncio.Event()
    delays = []

    async def fake_sleep(delay):
        delays.append(delay)
        await server_back.wait()

    events = []
    reconnecting, reconnected = asyncio.Event(), asyncio.Event()
    client = StelarClient(url_of(first), sleep=fake_sleep, random=lambda: 0.5, reconnection_attempts=None)
    client.on("disconnect", lambda info: events.append(("disconnect", info["code"])))
    client.on("reconnecting", lambda attempt: events.append(("reconnecting", attempt)) or reconnecting.set())
    client.on("connect", lambda: events.append(("connect",)) or (len(events) > 1 and reconnected.set()))
    try:
        await client.connect()
        assert (await client.join_room("team")).ok is True
        for n in range(5):
            client.emit("n", n)
        assert await client.request("sync") is True  # the first server has them all
        await first.stop()
        await asyncio.wait_for(reconnecting.wait(), 5)
        assert client.state == "reconnecting"
        for n in range(5, 10):
            client.emit("n", n)  # queued while the server is away
        assert client.queue_size == 5

        second = StelarServer(host="127.0.0.1", **same_port)
        second.on("n", lambda ctx: received.append(("second", ctx.data)))
        second.on_ack("sync", lambda ctx: True)
        await second.start()
        server_back.set()
        try:
            await asyncio.wait_for(reconnected.wait(), 5)
            assert await client.request("sync") is True
            assert received == [("first", n) for n in range(5)] + [("second", n) for n in range(5, 10)]
            assert second.get_room_members("team") == [client.id]
            assert client.queue_size == 0
            assert events == [("connect",), ("disconnect", 1001), ("reconnecting", 1), ("connect",)]
            assert delays == [0.5 * 1.0]
        finally:
            await client.disconnect()
            await second.stop()
    finally:
        await client.disconnect()
        await first.stop()


async def test_backoff_delays_and_giving_up(unused_tcp_port):
    delays, events = [], []

    async def fake_sleep(delay):
        delays.append(delay)

    client = StelarClient(
        f"tcp://127.0.0.1:{unused_tcp_port}",
        sleep=fake_sleep,
        random=lambda: 1.0,
        reconnection_attempts=6,
        reconnection_delay=0.5,
        max_reconnection_delay=4.0,
    )
    client.on("reconnect_failed", lambda: events.append("failed"))
    with pytest.raises(NotConnected):
        await client.connect()
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert events == ["failed"] and client.state == "disconnected"


def test_full_jitter_draws_within_the_window():
    assert full_jitter_delay(1, 1.0, 30.0, lambda: 0.0) == 0.0
    assert full_jitter_delay(3, 1.0, 30.0, lambda: 0.5) == 2.0
    assert full_jitter_delay(10, 1.0, 30.0, lambda: 1.0) == 30.0


async def test_custom_delay_and_the_delay_hook(unused_tcp_port):
    delays = []

    async def fake_sleep(delay):
        delays.append(delay)

    client = StelarClient(
        f"tcp://127.0.0.1:{unused_tcp_port}",
        sleep=fake_sleep,
        reconnection_attempts=3,
        custom_reconnect_delay=lambda attempt, base, maximum: attempt * 10,
        hooks={"on_reconnect_delay": lambda attempt, default_delay: 0.1 if attempt == 2 else None},
    )
    with pytest.raises(NotConnected):
        await client.connect()
    assert delays == [10, 0.1, 30]


async def test_a_silent_server_is_treated_as_gone():
    """A peer that answers the handshake, then says nothing: no pings, no pongs."""
    from stelar_core.protocol import FrameType, dump_json, encode_frame, length_prefixed

    async def mute(reader, writer):
        await reader.read(100)
        welcome = encode_frame(FrameType.CONNECT, "", dump_json({"id": "mute", "v": 1, "heartbeat": 4}))
        writer.write(length_prefixed(welcome))
        await reader.read()  # until the client gives up on us
        writer.close()

    listener = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    lost = asyncio.Event()
    clock = FakeClock()
    client = StelarClient(f"tcp://127.0.0.1:{port}", reconnection=False, clock=clock)
    client.on("disconnect", lambda info: lost.set())
    try:
        await client.connect()
        clock.advance(10)  # silent for 2.5 heartbeats (4 s each): the limit, not past it
        assert not lost.is_set() and client.connected
        clock.advance(2.5)  # the watchdog looks every quarter of the limit
        await asyncio.wait_for(lost.wait(), 5)
        assert "silent for 12.5s" in str(client.last_error)
    finally:
        await client.disconnect()
        listener.close()
        await listener.wait_closed()


def test_parse_file_refuses_what_does_not_hold_together():
    from stelar_core import ProtocolError
    from stelar_core.client import encode_file

    good = encode_file(io.BytesIO(b"abc"), name="a.bin")
    assert parse_file(good).content == b"abc" and parse_file(good).content_type == "application/octet-stream"
    for bad in (b"\x00", good[:-1], b"\x00\x02{}" + b"x", b"\x00\x04[1] "):
        with pytest.raises(ProtocolError):
            parse_file(bad)


async def test_the_url_changes_only_while_disconnected(server, client_factory):
    client = await client_factory(url_of(server))
    await client.connect()
    with pytest.raises(RuntimeError, match="only while disconnected"):
        client.url = "ws://127.0.0.1:1/"
    await client.disconnect()
    client.url = url_of(server)


@pytest.mark.parametrize("refusal", ["full", "origin"])
async def test_a_connection_refused_at_the_http_stage_leaves_no_unretrieved_future(
    stelar_server_factory, client_factory, caplog, refusal
):
    import gc

    server = await stelar_server_factory(
        port=0, transports=["ws"], max_connections=1, allowed_origins=["https://app"]
    )
    url = server.addresses["ws"][0]
    holder = await client_factory(url, origin="https://app")
    await holder.connect()
    refused = await client_factory(
        url, reconnection=False, origin="https://app" if refusal == "full" else "https://evil"
    )
    for _ in range(3):
        with pytest.raises(NotConnected, match="HTTP 503" if refusal == "full" else "HTTP 403"):
            await refused.connect()
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_the_readmes_origin_checked_server_takes_the_readmes_client(stelar_server_factory):
    server = await stelar_server_factory(port=0, transports=["ws"], allowed_origins=["https://app.example"])
    url = server.addresses["ws"][0]
    without = StelarClient(url, reconnection=False)
    with pytest.raises(NotConnected, match=r"HTTP 403: an Origin header is required.*origin=\.\.\."):
        await without.connect()
    client = StelarClient(url, origin="https://app.example")
    await client.connect()
    assert client.connected
    await client.disconnect()
