"""stelar-tcp end to end over real loopback sockets."""

import asyncio
import socket
import struct

import pytest

from stelar_core import AckError, ErrorCode, NotConnected
from stelar_core.plugin_api import ConnectOptions, FrameType, dump_json, encode_frame, length_prefixed
from stelar_core.testing import FakeClock, ReceivedEvent, TestClient, connect_client
from stelar_tcp import connect_tcp


@pytest.fixture
def stelar_transport():
    """Every server and client of this module speaks TCP."""
    return "tcp"


HAS_IPV6 = socket.has_ipv6


async def test_listens_on_a_free_port_and_reports_it(stelar_server):
    port = stelar_server.get_port("tcp")
    assert port and port > 0
    assert stelar_server.addresses == {"tcp": [f"tcp://127.0.0.1:{port}"]}


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 on this machine")
async def test_listens_on_ipv6(stelar_server_factory):
    try:
        server = await stelar_server_factory(host="::1")
    except OSError as exc:  # the kernel may have IPv6 disabled
        pytest.skip(f"cannot bind ::1: {exc}")
    port = server.get_port()
    assert server.addresses["tcp"] == [f"tcp://[::1]:{port}"]
    server.on_ack("v6", lambda ctx: ctx.remote_address)
    client = await connect_client(server)
    assert await client.request("v6") == "::1"
    client.close()


async def test_many_clients_in_one_room_get_every_broadcast(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(rate_limit=None)

    @server.on("say")
    def say(ctx):
        ctx.to("room", "said", {"from": ctx.id, "n": ctx.data})

    clients = [await stelar_client_factory(server) for _ in range(40)]
    for client in clients:
        await client.join("room")
    for n in range(5):
        clients[n].emit("say", n)
    for client in clients:
        got = [await client.next_event() for _ in range(5)]
        assert [event.data["n"] for event in got] == [0, 1, 2, 3, 4]
    assert server.get_stats().connections_by_transport == {"tcp": 40}


async def test_binary_events_and_acks_both_ways(stelar_server, stelar_client):
    stelar_server.on("blob", lambda ctx: ctx.emit_binary("blob", bytes(reversed(ctx.data))))
    stelar_server.on_ack("double", lambda ctx: ctx.data * 2)
    stelar_client.emit_binary("blob", bytes(range(256)) * 100)
    assert await stelar_client.next_event() == ReceivedEvent(
        "blob", bytes(reversed(bytes(range(256)) * 100)), True
    )
    answers = await asyncio.gather(*(stelar_client.request("double", n) for n in range(50)))
    assert answers == [n * 2 for n in range(50)]
    stelar_client.on_ack("name", lambda data: f"client-{data}")
    assert await stelar_server.request(stelar_client.id, "name", 7) == "client-7"
    with pytest.raises(AckError):
        await stelar_client.request("missing")


async def test_a_frame_trickled_one_byte_per_write(stelar_server, raw_tcp):
    stelar_server.on("slow", lambda ctx: ctx.emit("got", ctx.data))
    peer = await raw_tcp(stelar_server)
    await peer.handshake()
    wire = length_prefixed(encode_frame(FrameType.JSON, "slow", dump_json({"text": "drip"})))
    for index in range(len(wire)):
        await peer.write(wire[index : index + 1])
    frame = await peer.next_frame()
    assert (frame.type, frame.event, frame.json()) == (FrameType.JSON, "got", {"text": "drip"})


async def test_a_thousand_frames_in_one_write_are_dispatched_in_order(stelar_server_factory, raw_tcp):
    server = await stelar_server_factory(rate_limit=None)
    seen = []
    done = asyncio.Event()

    @server.on("n")
    def count(ctx):
        seen.append(ctx.data)
        if len(seen) == 1000:
            done.set()

    peer = await raw_tcp(server)
    await peer.handshake()
    await peer.write(
        b"".join(length_prefixed(encode_frame(FrameType.JSON, "n", dump_json(i))) for i in range(1000))
    )
    await asyncio.wait_for(done.wait(), 10)
    assert seen == list(range(1000))


@pytest.mark.parametrize(
    ("wire", "code", "close_code"),
    [
        (struct.pack(">I", 10_000_000), ErrorCode.FRAME_TOO_LARGE, 1009),
        (struct.pack(">I", 0), ErrorCode.INVALID_FRAME, 1002),
        (struct.pack(">I", 2) + b"\x00\x00", ErrorCode.INVALID_FRAME, 1002),
    ],
)
async def test_bad_lengths_close_with_error_and_disconnect(
    stelar_server_factory, raw_tcp, wire, code, close_code
):
    invalid = []
    server = await stelar_server_factory(
        max_payload_size=1000,
        max_frame_size=1_000_000,
        hooks={"on_invalid_message": lambda code: invalid.append(code)},
    )
    server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    bystander = await connect_client(server)
    peer = await raw_tcp(server)
    await peer.handshake()
    await peer.write(wire)
    frames = await peer.until_closed()
    assert [f.type for f in frames] == [FrameType.ERROR, FrameType.DISCONNECT]
    assert frames[0].event == code
    assert frames[1].json()["code"] == close_code
    assert invalid == [code]
    bystander.emit("echo", "still here")
    assert (await bystander.next_event()).data == "still here"
    bystander.close()


async def test_the_oversized_body_is_never_read(stelar_server_factory, raw_tcp):
    server = await stelar_server_factory(max_payload_size=1000, max_frame_size=1024)
    peer = await raw_tcp(server)
    await peer.handshake()
    peer.writer.write(struct.pack(">I", 5_000_000))
    await peer.writer.drain()
    frames = await peer.until_closed()
    assert frames[0].event == ErrorCode.FRAME_TOO_LARGE
    (connection_count,) = {len(t.connections) for t in server.transports}
    assert connection_count == 0


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x0c\x00\x00", ErrorCode.INVALID_FRAME),
        (b"\x00\x00\x09echo", ErrorCode.INVALID_FRAME),
        (b"\x00\x00\x02\xff\xfe", ErrorCode.INVALID_EVENT),
        (b"\x00\x00\x04echo{nope", ErrorCode.INVALID_JSON),
    ],
)
async def test_malformed_frames_get_an_error_and_the_connection_lives(stelar_server, raw_tcp, frame, code):
    stelar_server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    peer = await raw_tcp(stelar_server)
    await peer.handshake()
    await peer.write(length_prefixed(frame))
    error = await peer.next_frame()
    assert (error.type, error.event) == (FrameType.ERROR, code)
    await peer.send_frame(FrameType.JSON, "echo", dump_json("ok"))
    assert (await peer.next_frame()).json() == "ok"


async def test_refused_at_accept_time_with_an_error_frame(stelar_server_factory, raw_tcp):
    reached = []
    server = await stelar_server_factory(
        max_connections=1, hooks={"on_max_connections_reached": lambda scope: reached.append(scope)}
    )
    first = await connect_client(server)
    peer = await raw_tcp(server)
    frames = await peer.until_closed()  # refused before sending anything
    assert [(f.type, f.event) for f in frames] == [
        (FrameType.ERROR, ErrorCode.SERVER_FULL),
        (FrameType.DISCONNECT, ""),
    ]
    assert frames[1].json() == {"code": 1013, "reason": "server is full (1 connections)"}
    assert reached == ["global"]
    first.close()


async def test_connections_per_ip_are_limited_by_source_address(stelar_server_factory):
    server = await stelar_server_factory(max_connections_per_ip=2)
    a = [await connect_client(server, local_address="127.0.0.2") for _ in range(2)]
    with pytest.raises(NotConnected, match=ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP):
        await connect_client(server, local_address="127.0.0.2")
    other = await connect_client(server, local_address="127.0.0.3")
    assert sorted(c.remote_address for c in server.get_clients()) == ["127.0.0.2", "127.0.0.2", "127.0.0.3"]
    for client in [*a, other]:
        client.close()


async def test_connect_timeout_and_server_closes_with_disconnect_first(stelar_server_factory, raw_tcp):
    clock = FakeClock()
    server = await stelar_server_factory(connect_timeout=0.1, clock=clock)
    peer = await raw_tcp(server)
    await clock.wait_for_timers(2)  # the heartbeat sweep and this connection's connect timeout
    clock.advance(0.1)
    frames = await peer.until_closed()
    assert [(f.type, f.event) for f in frames] == [
        (FrameType.ERROR, ErrorCode.CONNECT_TIMEOUT),
        (FrameType.DISCONNECT, ""),
    ]


async def test_silent_peers_are_dropped_and_pings_answered(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(heartbeat_interval=0.05, heartbeat_timeout=0.15, clock=clock)
    silent = await connect_client(server, client=TestClient(auto_pong=False))
    lively = await connect_client(server)
    for _ in range(3):
        clock.advance(0.05)
        await lively.wait_until(lambda: lively.pings_received == silent.pings_received)
        await lively.join(f"round-trip-{silent.pings_received}")  # the server has read the pong
    clock.advance(0.05)
    assert await silent.wait_closed() == (1011, "heartbeat timeout")
    assert lively.pings_received >= 1 and not lively.closed.done()
    lively.close()


async def test_stop_sends_going_away_to_every_client(stelar_server_factory):
    server = await stelar_server_factory()
    clients = [await connect_client(server) for _ in range(3)]
    await server.stop()
    for client in clients:
        assert await client.wait_closed() == (1001, "server shutting down")


async def test_a_peer_that_vanishes_without_goodbye(stelar_server, raw_tcp):
    gone = asyncio.Event()
    codes = []

    @stelar_server.on_disconnect
    def bye(ctx):
        codes.append(ctx.data["code"])
        gone.set()

    peer = await raw_tcp(stelar_server)
    await peer.handshake()
    peer.writer.transport.abort()
    await asyncio.wait_for(gone.wait(), 5)
    assert codes == [1006]


async def test_the_connector_refuses_bad_urls_and_absent_servers(unused_tcp_port):
    with pytest.raises(ValueError, match="expected a tcp:// or tcps:// URL"):
        await connect_tcp("ws://127.0.0.1:1", TestClient(), ConnectOptions())
    with pytest.raises(ValueError, match="needs a host and a port"):
        await connect_tcp("tcp://127.0.0.1", TestClient(), ConnectOptions())
    with pytest.raises(ConnectionRefusedError):
        await connect_tcp(f"tcp://127.0.0.1:{unused_tcp_port}", TestClient(), ConnectOptions())


async def test_frames_sent_before_admission_completes_are_all_handled(
    stelar_server_factory, raw_tcp, gated_tracker
):
    # On uvloop reading starts after connection_made even though the transport paused it, so these
    # bytes reach the server while it is still admitting; they must wait, not be dropped.
    tracker = gated_tracker
    server = await stelar_server_factory(ip_tracker=tracker)
    server.on_ack("echo", lambda ctx: ctx.data)
    peer = await raw_tcp(server)
    await peer.send_frame(FrameType.CONNECT, payload=dump_json({"auth": {}}))
    for n in range(3):
        await peer.send_frame(FrameType.ACK_REQUEST, "echo", dump_json(n), ack_id=n + 1)
    await asyncio.wait_for(tracker.asked.wait(), 5)
    tracker.gate.set()
    assert (await peer.next_frame()).type is FrameType.CONNECT
    answers = [await peer.next_frame() for _ in range(3)]
    assert [(a.type, a.ack_id, a.json()) for a in answers] == [
        (FrameType.ACK_RESPONSE, n + 1, {"ok": n}) for n in range(3)
    ]


@pytest.fixture
async def never_reading_server():
    """``await connect(options)``: a TCP client link to a server that accepts and never reads."""
    accepted = asyncio.Event()
    peers = []

    async def never_read(reader, writer):
        peers.append(writer)
        accepted.set()

    listener = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]

    async def connect(options):
        client = TestClient()
        link = await connect_tcp(f"tcp://127.0.0.1:{port}", client, options)
        await accepted.wait()
        return client, link

    yield connect
    for writer in peers:
        writer.close()
    listener.close()
    await listener.wait_closed()


async def test_a_client_link_to_a_server_that_stops_reading_is_dropped_not_grown(never_reading_server):
    client, link = await never_reading_server(ConnectOptions(max_buffered_bytes=64 * 1024))
    frame = encode_frame(FrameType.BINARY, "x", bytes(64 * 1024))
    for _ in range(1024):  # 64 MiB at most: far past what the kernel's buffers hold
        if not link.writable:
            break
        link.send(frame)
    assert not link.writable  # it gave up instead of queueing the rest
    assert await client.wait_closed() == (1008, "server not reading")


async def test_a_client_link_over_its_bound_past_the_write_timeout_is_dropped(never_reading_server):
    clock = FakeClock()
    # A large hard bound (twice max_buffered_bytes), so only the timer can drop the link.
    options = ConnectOptions(max_buffered_bytes=8 * 1024 * 1024, write_timeout=5, clock=clock)
    client, link = await never_reading_server(options)
    frame = encode_frame(FrameType.BINARY, "x", bytes(1024 * 1024))
    timers = clock.pending
    for _ in range(64):  # until the kernel's buffers are full and asyncio's holds the bound
        link.send(frame)
        if clock.pending > timers:  # over max_buffered_bytes: the write timeout runs
            break
    assert clock.pending == timers + 1, "the output never went over max_buffered_bytes"
    clock.advance(4.9)
    assert link.writable
    clock.advance(0.1)
    assert await client.wait_closed() == (1008, "server not reading")
