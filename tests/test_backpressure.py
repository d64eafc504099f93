"""A peer that does not read, over TCP and WebSocket: bounded output, paused input, dropped as
a slow consumer, and a broadcast that never waits for it."""

import asyncio
import socket

import pytest

from stelar_core.protocol import FrameType, decode_frame, encode_frame
from stelar_core.testing import FakeClock

PAYLOAD = "x" * 16_000


@pytest.fixture(params=["tcp", "ws"])
def stelar_transport(request):
    return request.param


async def open_slow_peer(transport, server, raw_tcp, raw_ws):
    """A peer with a tiny receive buffer that never reads after its handshake; returns its id."""
    if transport == "tcp":
        peer = await raw_tcp(server, receive_buffer=4096)
        return (await peer.handshake())["id"]
    peer = await raw_ws(server)
    peer.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await peer.send_stelar(encode_frame(FrameType.CONNECT, "", b'{"auth":{}}'))
    _, welcome = await peer.next_message()
    return decode_frame(welcome).json()["id"]


async def next_iteration():
    """Let the loop run once (flushes happen at the end of an iteration)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_soon(done.set_result, None)
    await done


@pytest.fixture
async def crowd(request, stelar_transport, stelar_server_factory, stelar_client_factory, raw_tcp, raw_ws):
    """A server with a small output bound; a reading client and a peer that never reads.
    ``slow_consumer_timeout`` comes from ``@pytest.mark.grace(seconds)``."""
    grace = request.node.get_closest_marker("grace").args[0]
    dropped = asyncio.Event()
    reports = []

    def on_slow_consumer(client_id, protocol, buffered_bytes):
        reports.append((client_id, protocol, buffered_bytes))
        dropped.set()

    clock = FakeClock()
    server = await stelar_server_factory(
        rate_limit=None,
        max_buffered_bytes=256 * 1024,
        slow_consumer_timeout=grace,
        hooks={"on_slow_consumer": on_slow_consumer},
        clock=clock,
    )
    reader = await stelar_client_factory(server, max_frame_size=1 << 20)
    await reader.join("room")
    slow_id = await open_slow_peer(stelar_transport, server, raw_tcp, raw_ws)
    server.hub.rooms.join(server.hub.session(slow_id), "room")
    (connection,) = [c for c in server.transports[0].connections if c.session and c.session.id == slow_id]
    return server, reader, connection, dropped, reports, clock


@pytest.mark.grace(0.2)
async def test_a_peer_over_the_bound_is_paused_then_dropped_after_the_grace(crowd):
    server, reader, connection, dropped, reports, clock = crowd
    sent = 0
    while not connection._write_paused and sent < 2000:
        server.to("room", "big", PAYLOAD)
        sent += 1
        await next_iteration()
    assert connection._write_paused, "the peer's output never reached max_buffered_bytes"
    assert not connection._transport.is_reading()  # we stopped reading from it
    assert connection._transport.get_write_buffer_size() <= 2 * 256 * 1024
    clock.advance(0.19)  # within the grace: paused, not dropped
    assert not dropped.is_set() and not connection.closing
    clock.advance(0.01)
    await asyncio.wait_for(dropped.wait(), 5)
    assert reports[0][1] == server.transports[0].name and reports[0][2] > 256 * 1024
    assert server.get_stats().counters["slow_consumers"] == 1
    # The reader got every broadcast, whatever the slow one did.
    for _ in range(sent):
        assert (await reader.next_event()).event == "big"
    assert [c.id for c in server.get_clients()] == [reader.id]


@pytest.mark.grace(3600)  # so only the hard bound can drop it within the test
async def test_a_burst_far_past_the_bound_drops_the_peer_at_once(crowd):
    server, reader, _connection, dropped, reports, _clock = crowd
    sent = 0
    while not dropped.is_set() and sent < 2000:
        for _ in range(20):  # 320 KB in one iteration
            server.to("room", "big", PAYLOAD)
            sent += 1
        await next_iteration()
    assert dropped.is_set()
    assert reports[0][2] > 2 * 256 * 1024
    for _ in range(sent):
        assert (await reader.next_event()).event == "big"
    assert not reader.closed.done()
