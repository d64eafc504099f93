"""stelar-ws end to end over real loopback sockets."""

import asyncio
import contextlib
import http.client
import logging

import pytest
import websockets
from websockets.asyncio.client import connect as websockets_connect

from stelar_core import ErrorCode, hookimpl
from stelar_core.plugin_api import ConnectOptions, Frame, FrameType, decode_frame, dump_json, encode_frame
from stelar_core.testing import (
    FakeClock,
    ReceivedEvent,
    StandInTransport,
    TestClient,
    connect_client,
    eventually,
)
from stelar_core.testing.http import http_get
from stelar_ws import HandshakeRejected, connect_ws
from stelar_ws import server as ws_server

CONNECT = encode_frame(FrameType.CONNECT, "", dump_json({"auth": {"token": "t"}}))


@pytest.fixture
def stelar_transport():
    """Every server and client of this module speaks WebSocket."""
    return "ws"


async def get(server, path, headers=None):
    return await asyncio.to_thread(http_get, server.get_port("ws"), path, headers)


# ---------------------------------------------------------------- listening and the wire


async def test_listens_on_a_free_port_at_the_path(stelar_server_factory):
    server = await stelar_server_factory(path="/realtime")
    port = server.get_port("ws")
    assert server.addresses == {"ws": [f"ws://127.0.0.1:{port}/realtime"]}
    client = await connect_client(server)
    assert client.id
    client.close()


async def test_listens_on_ipv6(stelar_server_factory):
    try:
        server = await stelar_server_factory(host="::1")
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    assert server.addresses["ws"][0].startswith("ws://[::1]:")
    client = await connect_client(server)
    client.close()


async def test_a_websockets_library_client_speaks_stelar(stelar_server):
    """A client nobody here wrote: the websockets library, sending stelar frames as a browser would."""
    stelar_server.on_ack("sum", lambda ctx: sum(ctx.data))
    stelar_server.on("hello", lambda ctx: ctx.emit("hi", ctx.data))
    url = stelar_server.addresses["ws"][0]
    async with websockets_connect(url, subprotocols=["stelar.v1"]) as ws:
        assert ws.subprotocol == "stelar.v1"
        await ws.send(CONNECT)
        welcome = decode_frame(await ws.recv())
        assert welcome.type is FrameType.CONNECT and welcome.json()["v"] == 1
        await ws.send(encode_frame(FrameType.ACK_REQUEST, "sum", b"[1,2,3]", 9))
        assert decode_frame(await ws.recv()) == Frame(FrameType.ACK_RESPONSE, "sum", b'{"ok":6}', 9)
        await ws.send(encode_frame(FrameType.JSON, "hello", b'"there"'))
        assert decode_frame(await ws.recv()) == Frame(FrameType.JSON, "hi", b'"there"')
        await ws.ping()  # WebSocket pings are answered
    assert stelar_server.get_stats().total_connections == 1


async def test_a_connection_logs_stelar_s_lines_not_the_library_s(stelar_server, caplog):
    # At info, one line per connection and disconnection (stelar's). websockets' "connection
    # open" (which it logs for an upgrade it reads: here, a request split over two reads) and
    # "connection closed" would repeat them: the library's logger shows warnings and errors only.
    caplog.set_level(logging.INFO)
    connection, stand_in = ws_connection(stelar_server)
    connection.data_received(UPGRADE_REQUEST[:20])
    connection.data_received(UPGRADE_REQUEST[20:] + masked_binary(CONNECT))
    assert b"".join(stand_in.written).startswith(b"HTTP/1.1 101 ") and connection.ws.accept_called
    connection.data_received(masked_binary(b"\x03\xe8", opcode=8))  # a close frame, 1000
    connection.connection_lost(None)
    await eventually(lambda: stelar_server.get_stats().active_connections == 0)
    lines = [(record.name, record.getMessage()) for record in caplog.records]
    assert [message.split()[2] for name, message in lines if name == "stelar.hub"] == [
        "connected",
        "disconnected:",
    ]
    assert not [line for line in lines if line[0] == "stelar.ws.library"], lines


async def test_fragmented_messages_are_reassembled(stelar_server):
    stelar_server.on("big", lambda ctx: ctx.emit("len", len(ctx.data["text"])))
    async with websockets_connect(stelar_server.addresses["ws"][0], subprotocols=["stelar.v1"]) as ws:
        await ws.send(CONNECT)
        await ws.recv()
        whole = encode_frame(FrameType.JSON, "big", dump_json({"text": "x" * 5000}))
        await ws.send([whole[i : i + 1000] for i in range(0, len(whole), 1000)])
        assert decode_frame(await ws.recv()).json() == 5000


async def test_a_text_message_is_refused_with_1003(stelar_server):
    async with websockets_connect(stelar_server.addresses["ws"][0], subprotocols=["stelar.v1"]) as ws:
        await ws.send("text is not a stelar frame")
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd.code == 1003


# ---------------------------------------------------------------- HTTP on the same port


class PingRoute:
    @hookimpl
    def stelar_register_http_routes(self, register):
        register("/ping", lambda request: _pong(request))

        async def slow(request):
            return _pong(request)

        register("/async", slow)
        register("/boom", lambda request: 1 / 0)


def _pong(request):
    from stelar_core.plugin_api import HttpResponse

    return HttpResponse(200, f"pong {request.query}".encode(), {"Content-Type": "text/plain"})


async def test_http_routes_404_and_426(stelar_server_factory):
    server = await stelar_server_factory(plugins=[PingRoute()], path="/ws")
    assert (await get(server, "/ping?x=1"))[::2] == (200, b"pong x=1")
    assert (await get(server, "/async"))[::2] == (200, b"pong ")
    status, _, body = await get(server, "/boom")
    assert status == 500 and b"division by zero" in body
    assert (await get(server, "/nowhere"))[0] == 404
    status, headers, _ = await get(server, "/ws")
    assert status == 426 and headers["upgrade"] == "websocket"
    client = await connect_client(server)  # the WebSocket path still upgrades
    client.close()


@pytest.mark.parametrize("version", ["8", "14", None])
async def test_an_unsupported_websocket_version_is_told_the_one_spoken(stelar_server, version):
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    if version is not None:
        headers["Sec-WebSocket-Version"] = version
    status, answer, _ = await get(stelar_server, "/", headers)
    assert status == 426 and answer["sec-websocket-version"] == "13"  # RFC 6455 section 4.4
    client = await connect_client(stelar_server)  # version 13 still upgrades
    client.close()


# ---------------------------------------------------------------- admission before the upgrade


async def test_origins(stelar_server_factory):
    server = await stelar_server_factory(allowed_origins=["https://app.example"])
    ok = await connect_client(server, headers={"Origin": "https://app.example"})
    ok.close()
    with pytest.raises(HandshakeRejected) as info:
        await connect_client(server, headers={"Origin": "https://evil.example"})
    assert info.value.status == 403 and "not allowed" in info.value.body
    with pytest.raises(HandshakeRejected) as info:
        await connect_client(server)
    assert info.value.status == 403 and "Origin header is required" in info.value.body
    lenient = await stelar_server_factory(allowed_origins=["https://app.example"], allow_missing_origin=True)
    service = await connect_client(lenient)
    service.close()


async def test_connection_limits_answer_with_http_statuses(stelar_server_factory):
    reached = []
    server = await stelar_server_factory(
        max_connections=3,
        max_connections_per_ip=2,
        hooks={"on_max_connections_reached": lambda scope: reached.append(scope)},
    )
    a = [await connect_client(server, local_address="127.0.0.2") for _ in range(2)]
    with pytest.raises(HandshakeRejected) as info:
        await connect_client(server, local_address="127.0.0.2")
    assert info.value.status == 429 and ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP in info.value.body
    b = await connect_client(server, local_address="127.0.0.3")
    with pytest.raises(HandshakeRejected) as info:
        await connect_client(server, local_address="127.0.0.4")
    assert info.value.status == 503 and ErrorCode.SERVER_FULL in info.value.body
    assert reached == ["ip", "global"]
    for client in [*a, b]:
        client.close()


async def test_a_client_trickling_its_headers_is_dropped(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(connect_timeout=2, clock=clock)
    timers = clock.pending  # the heartbeat sweep's
    reader, writer = await asyncio.open_connection("127.0.0.1", server.get_port("ws"))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    await clock.wait_for_timers(timers + 1)  # the connection's handshake deadline
    clock.advance(1.9)
    assert server.get_stats().transports["ws"]["handshake_timeouts"] == 0
    clock.advance(0.1)
    with contextlib.suppress(ConnectionResetError):  # aborted: a reset or an end of stream
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert server.get_stats().transports["ws"]["handshake_timeouts"] == 1
    client = await connect_client(server)
    client.close()


async def test_x_forwarded_for_only_from_trusted_proxies(stelar_server_factory):
    trusted = await stelar_server_factory(trusted_proxies=["127.0.0.0/8"])
    trusted.on_ack("ip", lambda ctx: ctx.remote_address)
    client = await connect_client(trusted, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
    assert await client.request("ip") == "203.0.113.9"
    client.close()
    untrusted = await stelar_server_factory()
    untrusted.on_ack("ip", lambda ctx: ctx.remote_address)
    client = await connect_client(untrusted, headers={"X-Forwarded-For": "203.0.113.9"})
    assert await client.request("ip") == "127.0.0.1"
    client.close()


async def test_middleware_sees_the_http_request_and_auth(stelar_server, stelar_client_factory):
    seen = {}

    @stelar_server.use
    def check(ctx, next):
        seen.update(method=ctx.req.method, path=ctx.req.path, query=ctx.req.query, auth=ctx.auth)
        seen["agent"] = ctx.req.headers.get("x-client")
        next()

    await stelar_client_factory(stelar_server, auth={"token": "abc"}, headers={"X-Client": "tests"})
    assert seen == {"method": "GET", "path": "/", "query": "", "auth": {"token": "abc"}, "agent": "tests"}


async def test_a_connection_holds_its_request_headers_once(stelar_server, stelar_client_factory):
    """websockets' parser keeps its handshake request for the connection's life; the server
    empties that request's headers after the upgrade, keeping its own compact copy for ctx.req."""

    @stelar_server.on_ack("agent")
    def agent(ctx):
        return ctx.req.headers["X-CLIENT"]  # looked up in any case, after the handshake too

    client = await stelar_client_factory(stelar_server, headers={"X-Client": "tests"})
    assert await client.request("agent") == "tests"
    (connection,) = stelar_server.transports[0].connections
    kept = connection.ws.parser.gi_frame.f_locals.get("request")
    if kept is None:
        pytest.skip("this websockets version no longer keeps the handshake request")
    assert len(kept.headers) == 0


# ---------------------------------------------------------------- limits, heartbeats, close codes


async def test_a_message_over_max_frame_size_closes_1009_and_others_carry_on(stelar_server_factory):
    server = await stelar_server_factory(max_payload_size=1000, max_frame_size=2000)
    server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    bystander = await connect_client(server)
    async with websockets_connect(server.addresses["ws"][0], subprotocols=["stelar.v1"], max_size=None) as ws:
        await ws.send(CONNECT)
        await ws.recv()
        await ws.send(encode_frame(FrameType.JSON, "echo", dump_json("x" * 3000)))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd.code == 1009
    bystander.emit("echo", "fine")
    assert (await bystander.next_event()).data == "fine"
    bystander.close()


async def test_a_payload_over_max_payload_size_gets_an_error_frame(stelar_server_factory):
    server = await stelar_server_factory(max_payload_size=100, max_frame_size=2000)
    client = await connect_client(server)
    client.emit("big", "x" * 200)
    assert (await client.next_error())[0] == ErrorCode.PAYLOAD_TOO_LARGE
    client.close()


async def test_close_codes_with_reasons(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(heartbeat_interval=0.05, heartbeat_timeout=0.15, clock=clock)
    silent = await connect_client(server, client=TestClient(auto_pong=False))
    clock.advance(0.21)
    assert await silent.wait_closed() == (1011, "heartbeat timeout")
    limited = await stelar_server_factory(rate_limit={"max_points": 1, "window": 60})
    spammer = await connect_client(limited)
    spammer.emit("a")
    spammer.emit("b")
    assert await spammer.wait_closed() == (1008, "rate limit exceeded")
    leaving = await connect_client(limited)
    await limited.stop()
    assert await leaving.wait_closed() == (1001, "server shutting down")


# ---------------------------------------------------------------- malformed WebSocket input


@pytest.mark.parametrize(
    ("make_frame", "code"),
    [
        (lambda peer: peer.frame(0x2, b"\x02\x00\x00", mask=False), 1002),  # unmasked client frame
        (lambda peer: peer.frame(0x2, b"\x02\x00\x00", rsv=0b100), 1002),  # RSV1 without extension
        (lambda peer: peer.frame(0x3, b"x"), 1002),  # reserved data opcode
        (lambda peer: peer.frame(0xB, b"x"), 1002),  # reserved control opcode
        (lambda peer: peer.frame(0x9, b"p" * 126), 1002),  # control frame over 125 bytes
        (lambda peer: peer.frame(0x9, b"p", fin=False), 1002),  # fragmented control frame
        (lambda peer: peer.frame(0x1, b"\xff\xfe"), 1007),  # invalid UTF-8 text
        (lambda peer: peer.frame(0x8, (999).to_bytes(2, "big")), 1002),  # bad close code
        (lambda peer: peer.frame(0x0, b"x"), 1002),  # continuation with nothing to continue
        (lambda peer: peer.frame(0x2, b"", length=1 << 40), 1009),  # 64-bit length over the limit
    ],
)
async def test_malformed_websocket_input_is_refused_per_rfc_6455(
    stelar_server_factory, raw_ws, make_frame, code
):
    server = await stelar_server_factory(max_payload_size=1000, max_frame_size=4096)
    server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    bystander = await connect_client(server)
    peer = await raw_ws(server)
    assert b" 101 " in peer.response
    await peer.send_stelar(CONNECT)
    await peer.next_message()
    await peer.send(make_frame(peer))
    assert await peer.close_code() == code
    bystander.emit("echo", "unharmed")
    assert (await bystander.next_event()).data == "unharmed"
    bystander.close()


# ---------------------------------------------------------------- broadcasts and compression


async def test_a_broadcast_is_framed_once_for_uncompressed_clients(stelar_server_factory, monkeypatch):
    server = await stelar_server_factory()
    clients = [await connect_client(server) for _ in range(30)]
    for client in clients:
        await client.join("room")
    calls = []
    transport = next(t for t in server.transports if isinstance(t, ws_server.WsTransport))
    real = transport.wrap
    monkeypatch.setattr(transport, "wrap", lambda frame: calls.append(frame) or real(frame))
    server.to("room", "news", {"n": 1})
    for client in clients:
        assert await client.next_event() == ReceivedEvent("news", {"n": 1})
    assert len(calls) == 1
    for client in clients:
        client.close()


async def test_permessage_deflate_when_enabled(stelar_server_factory):
    server = await stelar_server_factory(compression=True, max_payload_size=50_000, max_frame_size=60_000)
    server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    url = server.addresses["ws"][0]
    async with websockets_connect(url, subprotocols=["stelar.v1"], compression="deflate") as ws:
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        await ws.send(CONNECT)
        await ws.recv()
        await ws.send(encode_frame(FrameType.JSON, "echo", dump_json("z" * 10_000)))
        assert decode_frame(await ws.recv()).json() == "z" * 10_000
        # Small on the wire, huge once inflated: the bound applies to the decompressed size.
        await ws.send(encode_frame(FrameType.JSON, "echo", dump_json("z" * 100_000)))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd.code == 1009
    client = await connect_client(server, compression=True)  # our connector negotiates it too
    client.emit("echo", "compressed")
    assert (await client.next_event()).data == "compressed"
    client.close()


async def test_compression_is_off_by_default(stelar_server):
    async with websockets_connect(
        stelar_server.addresses["ws"][0], subprotocols=["stelar.v1"], compression="deflate"
    ) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


async def test_the_connector_refuses_what_is_not_a_websocket_server(unused_tcp_port):
    with pytest.raises(OSError):
        await connect_ws(f"ws://127.0.0.1:{unused_tcp_port}/", TestClient(), ConnectOptions())
    with pytest.raises(websockets.InvalidURI, match="scheme isn't ws or wss"):
        await connect_ws("http://127.0.0.1:1/", TestClient(), ConnectOptions())


async def test_a_frame_before_connect_closes_with_1008(stelar_server):
    client = await connect_client(stelar_server, handshake=False)
    client.emit("too-early")
    assert (await client.next_error())[0] == ErrorCode.NOT_CONNECTED
    assert (await client.wait_closed())[0] == 1008


async def test_an_upgrade_without_the_stelar_subprotocol_is_refused(stelar_server):
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets_connect(stelar_server.addresses["ws"][0]):
            pass
    assert info.value.response.status_code == 400


class CorsRoute:
    @hookimpl
    def stelar_register_http_routes(self, register):
        from stelar_core.plugin_api import HttpResponse

        register(
            "/both",
            lambda request: HttpResponse(204 if request.method == "OPTIONS" else 200),
            ("GET", "OPTIONS"),
        )


def http_request(port: int, method: str, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        connection.close()


async def test_routes_answer_the_methods_they_declare(stelar_server_factory):
    server = await stelar_server_factory(plugins=[CorsRoute(), PingRoute()])
    port = server.get_port("ws")
    assert (await asyncio.to_thread(http_request, port, "OPTIONS", "/both"))[0] == 204
    assert (await asyncio.to_thread(http_request, port, "GET", "/both"))[0] == 200
    status, headers = await asyncio.to_thread(http_request, port, "OPTIONS", "/ping")
    assert status == 405 and headers["Allow"] == "GET"


class EchoBody:
    @hookimpl
    def stelar_register_http_routes(self, register):
        from stelar_core.plugin_api import HttpResponse

        def echo(request):
            seen = f"{request.method} {request.remote_address} ".encode()
            return HttpResponse(200, seen + request.body)

        register("/echo", echo, ("POST",))


@pytest.mark.parametrize("first", [None, 2, 1])
async def test_a_request_with_a_body_reaches_its_route_however_it_is_split(stelar_server_factory, first):
    server = await stelar_server_factory(plugins=[EchoBody()], ws={"trusted_proxies": ["127.0.0.1"]})
    port = server.get_port("ws")
    request = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.1.2.3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Whole; or a first piece shorter than "GET " (then the rest); or byte by byte.
    pieces = [request] if first is None else [request[:first], request[first:]]
    if first == 1:
        pieces = [request[index : index + 1] for index in range(len(request))]
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"POST 10.1.2.3 hello world")
    # The same port still upgrades, and still refuses a request it cannot read.
    client = await connect_client(server, "ws")
    client.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"PUT /echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 400 ")
    writer.close()


def test_request_headers_are_lower_case_with_repeated_fields_joined():
    from websockets.datastructures import Headers
    from websockets.http11 import Request

    from stelar_ws.http import request_fields, to_request

    headers = Headers([("Cookie", "a=1"), ("X-Tag", "one"), ("cookie", "b=2"), ("Host", "h")])
    request = to_request("GET", "/live?x=1", request_fields(Request("/live?x=1", headers)), "192.0.2.1")
    assert (request.path, request.query, request.remote_address) == ("/live", "x=1", "192.0.2.1")
    assert dict(request.headers) == {"cookie": "a=1, b=2", "x-tag": "one", "host": "h"}
    assert request.headers["COOKIE"] == "a=1, b=2" and "x-tag" in request.headers
    assert request.headers.get("origin") is None and len(request.headers) == 3
    with pytest.raises(KeyError):
        request.headers["origin"]


UPGRADE_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: stelar.v1\r\n\r\n"
)


def masked_binary(message: bytes, opcode: int = 2) -> bytes:
    """A short binary frame as a client sends it (mask 1, 2, 3, 4); ``opcode`` another kind."""
    mask = b"\x01\x02\x03\x04"
    return (
        bytes((0x80 | opcode, 0x80 | len(message)))
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(message))
    )


def ws_connection(server) -> tuple[ws_server.WsConnection, StandInTransport]:
    """A connection of ``server``'s WebSocket transport on a stand-in socket, fed by hand."""
    transport = next(t for t in server.transports if isinstance(t, ws_server.WsTransport))
    connection, stand_in = ws_server.WsConnection(transport), StandInTransport()
    connection.connection_made(stand_in)
    return connection, stand_in


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 7, 64, 4096])
async def test_a_request_and_frames_cut_anywhere_reach_the_session_in_order(stelar_server_factory, piece):
    """The end of the request (its empty line) may straddle reads, and frames sent with it may
    come in the same read: the request goes to the upgrade, the frames to the session after it.
    A request in one read is read by stelar_ws.upgrade, one in pieces by the library."""
    server = await stelar_server_factory()
    server.on_ack("echo", lambda ctx: ctx.data)
    connection, stand_in = ws_connection(server)
    stream = (
        UPGRADE_REQUEST
        + masked_binary(CONNECT)
        + masked_binary(encode_frame(FrameType.ACK_REQUEST, "echo", b"7", 1))
    )
    for start in range(0, len(stream), piece):
        connection.data_received(stream[start : start + piece])
    written = b"".join(stand_in.written)
    assert written.startswith(b"HTTP/1.1 101 ")
    assert connection.ws.accept_called == (piece < len(UPGRADE_REQUEST))  # the library's accept()
    _, frames = written.split(b"\r\n\r\n", 1)
    answers = []
    while frames:  # unmasked server frames: a 7-bit length, or 126 and a 16-bit one
        length, start = frames[1], 2
        if length == 126:
            length, start = int.from_bytes(frames[2:4], "big"), 4
        answers.append(decode_frame(frames[start : start + length]))
        frames = frames[start + length :]
    assert [answer.type for answer in answers] == [FrameType.CONNECT, FrameType.ACK_RESPONSE]
    assert answers[1].json() == {"ok": 7}
    connection.connection_lost(None)  # the stand-in socket goes: the server's stop need not wait for it


async def test_what_waits_for_the_upgrade_is_bounded(stelar_server_factory, gated_tracker):
    """Frames sent before the 101 wait while the connection is admitted (reading is paused); a
    transport that delivers more anyway (TLS, uvloop) is cut off at one message's worth."""
    server = await stelar_server_factory(
        ip_tracker=gated_tracker, max_payload_size=9_000, max_frame_size=10_000
    )
    connection, stand_in = ws_connection(server)
    connection.data_received(UPGRADE_REQUEST + bytes(5_000))
    await asyncio.wait_for(gated_tracker.asked.wait(), 5)
    assert not stand_in.reading and not stand_in.aborted
    connection.data_received(bytes(5_000))
    assert not stand_in.aborted  # 10,000 bytes: one message's worth
    connection.data_received(bytes(100))
    assert stand_in.aborted
    connection.connection_lost(None)
    gated_tracker.gate.set()


async def test_messages_sent_with_the_upgrade_request_are_kept_for_the_session(
    stelar_server_factory, raw_ws, gated_tracker
):
    # A client that does not wait for the 101 (websockets' own server accepts it): its messages
    # arrive while the server is still admitting the connection.
    server = await stelar_server_factory(ip_tracker=gated_tracker)
    server.on_ack("echo", lambda ctx: ctx.data)

    def masked(message: bytes) -> bytes:  # a short binary frame, mask of zeros
        return bytes((0x82, 0x80 | len(message))) + b"\x00\x00\x00\x00" + message

    early = masked(CONNECT) + masked(encode_frame(FrameType.ACK_REQUEST, "echo", b"7", 1))
    connecting = asyncio.ensure_future(raw_ws(server, pipelined=early))
    await asyncio.wait_for(gated_tracker.asked.wait(), 5)
    gated_tracker.gate.set()
    peer = await connecting
    assert b" 101 " in peer.response
    kinds = [decode_frame((await peer.next_message())[1]) for _ in range(2)]
    assert kinds[0].type is FrameType.CONNECT
    assert (kinds[1].type, kinds[1].ack_id, kinds[1].json()) == (FrameType.ACK_RESPONSE, 1, {"ok": 7})
