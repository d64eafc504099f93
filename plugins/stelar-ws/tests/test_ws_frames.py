"""stelar-ws's inbound fast path (``stelar_ws.frames``) against websockets' own parser.

The same bytes, cut at the same places, go to a plain ``websockets`` ServerProtocol and to one
read through :class:`InboundFrames`: both must deliver the same messages in the same order, send
the same bytes back (pongs, close frames) and end in the same state, whatever the frames are
(control frames, fragments, text, reserved bits, unmasked, over the size limit, truncated).
"""

from __future__ import annotations

import itertools
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from stelar_ws.frames import FAST_PATH_MAX, InboundFrames, InboundSplitter

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def open_protocol(max_size: int) -> ServerProtocol:
    """A server protocol past its handshake, as WsConnection has it when the session opens."""
    protocol = ServerProtocol(max_size=max_size)
    protocol.receive_data(UPGRADE)
    [request] = protocol.events_received()
    protocol.send_response(protocol.accept(request))
    protocol.data_to_send()
    return protocol


def wire_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    long_form: int = 0,
    mask: bytes = b"\x01\x02\x03\x04",
) -> bytes:
    """One frame as a client might send it, malformed on request: any opcode and reserved bits,
    unmasked, and the length in a longer form than needed (``long_form`` 2 or 8 bytes)."""
    length = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if long_form == 8 or length > 0xFFFF:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    elif long_form == 2 or length > 125:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = bytes((first, mask_bit | length))
    if not masked:
        return header + payload
    body = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return header + mask + body


class Messages:
    """Whole messages out of fast-path bytes and library frames, as WsConnection assembles them."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._kind = ""
        self._parts: list[bytes] = []

    def add(self, item: bytes | Frame) -> None:
        if isinstance(item, bytes):
            self.messages.append(("binary", item))
        elif item.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._kind, self._parts = item.opcode.name.lower(), [bytes(item.data)]
            if item.fin:
                self._done()
        elif item.opcode is Opcode.CONT:
            self._parts.append(bytes(item.data))
            if item.fin:
                self._done()

    def _done(self) -> None:
        self.messages.append((self._kind, b"".join(self._parts)))
        self._parts = []


def run_both(chunks: list[bytes], max_size: int, eof: bool) -> None:
    reference, fast = open_protocol(max_size), open_protocol(max_size)
    inbound = InboundFrames(fast)
    expected, got = Messages(), Messages()
    sent_reference, sent_fast = [], []
    for chunk in chunks:
        reference.receive_data(chunk)
        for event in reference.events_received():
            expected.add(event)
        for item in inbound.receive(chunk):
            got.add(item)
        sent_reference += reference.data_to_send()
        sent_fast += fast.data_to_send()
    if eof:
        reference.receive_eof()
        inbound.receive_eof()
        sent_reference += reference.data_to_send()
        sent_fast += fast.data_to_send()
    assert got.messages == expected.messages
    assert b"|".join(sent_fast) == b"|".join(sent_reference)
    assert fast.state is reference.state
    assert fast.close_rcvd == reference.close_rcvd
    assert fast.close_sent == reference.close_sent
    assert type(fast.parser_exc) is type(reference.parser_exc)


OPCODES = st.sampled_from([0, 1, 2, 2, 2, 2, 3, 8, 9, 10, 11])
PAYLOADS = st.one_of(
    st.binary(max_size=130),
    st.integers(min_value=126, max_value=70_000).map(lambda n: os.urandom(n)),
)
FRAMES = st.builds(
    wire_frame,
    OPCODES,
    PAYLOADS,
    fin=st.booleans() | st.just(True),
    rsv=st.sampled_from([0, 0, 0, 0x40, 0x10]),
    masked=st.booleans() | st.just(True) | st.just(True),
    long_form=st.sampled_from([0, 0, 0, 2, 8]),
    mask=st.binary(min_size=4, max_size=4),
)


@settings(max_examples=300)
@given(
    frames=st.lists(FRAMES, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=80_000), max_size=6),
    max_size=st.sampled_from([64, 1000, FAST_PATH_MAX, 200_000]),
    eof=st.booleans(),
)
def test_the_fast_path_reads_any_stream_as_websockets_does(frames, cuts, max_size, eof):
    stream = b"".join(frames)
    points = sorted({0, len(stream), *(cut for cut in cuts if cut < len(stream))})
    chunks = [stream[start:end] for start, end in itertools.pairwise(points)]
    run_both(chunks, max_size, eof)


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=10), st.data())
def test_well_formed_binary_messages_cut_anywhere(payloads, data):
    """The common case, cut byte by byte at any place, mixed with pings (answered in order)."""
    stream = b"".join(
        wire_frame(2, payload) + (wire_frame(9, b"p") if i % 3 == 2 else b"")
        for i, payload in enumerate(payloads)
    )
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(stream)), max_size=8))
    points = sorted({0, len(stream), *cuts})
    run_both([stream[start:end] for start, end in itertools.pairwise(points)], 1 << 20, False)


def test_small_binary_messages_take_the_fast_path():
    splitter = InboundSplitter(1 << 20)
    splitter.feed(wire_frame(2, b"one") + wire_frame(2, b"two") + wire_frame(9, b"ping")[:3])
    assert splitter.next() == (True, b"one")
    assert splitter.next() == (True, b"two")
    assert splitter.next() is None  # the ping's header is not whole yet: nothing is guessed
    splitter.feed(wire_frame(9, b"ping")[3:])
    assert splitter.next() == (False, wire_frame(9, b"ping"))  # the library answers pings


def test_a_frame_over_the_fast_path_bound_streams_to_the_library_as_it_comes():
    frame = wire_frame(2, bytes(FAST_PATH_MAX + 1))
    splitter = InboundSplitter(1 << 20)
    splitter.feed(frame[:1000])
    assert splitter.next() == (False, frame[:1000])
    splitter.feed(frame[1000:])
    assert splitter.next() == (False, frame[1000:])
    assert splitter.next() is None


def test_an_idle_splitter_holds_nothing_and_a_partial_frame_holds_only_itself():
    splitter = InboundSplitter(1 << 20)
    splitter.feed(wire_frame(2, b"whole") + wire_frame(2, b"partial")[:5])
    assert splitter.next() == (True, b"whole")
    assert splitter.next() is None
    assert splitter.rest() == wire_frame(2, b"partial")[:5]
    splitter.feed(wire_frame(2, b"x"))
    assert splitter.next() == (True, b"x")
    assert splitter.next() is None
    assert splitter.rest() == b""


def test_a_close_sent_while_reading_hands_the_rest_to_the_library():
    """The hub closes the connection on a message (a rate limit, say): what follows in the same
    read is the library's again, which still delivers data frames sent before the client's close."""
    protocol = open_protocol(1 << 20)
    inbound = InboundFrames(protocol)
    stream = wire_frame(2, b"first") + wire_frame(2, b"second") + wire_frame(8, struct.pack("!H", 1000))
    got = []
    for item in inbound.receive(stream):
        got.append(item)
        if item == b"first":
            protocol.send_close(1008, "rate limit exceeded")
    assert got[0] == b"first"
    assert isinstance(got[1], Frame)
    assert (got[1].opcode, got[1].data) == (Opcode.BINARY, b"second")
    assert protocol.close_rcvd is not None and protocol.close_rcvd.code == 1000
    # Nothing more is split once the library has the stream.
    assert list(inbound.receive(wire_frame(2, b"late"))) == []


@pytest.mark.parametrize("max_size", [10, 100])
def test_a_message_over_the_size_limit_fails_as_websockets_fails_it(max_size):
    run_both([wire_frame(2, b"a" * 50)], max_size, False)


@pytest.mark.parametrize(
    "stream",
    [
        # A whole binary frame inside a fragmented message: websockets' protocol error.
        wire_frame(2, b"start", fin=False) + wire_frame(2, b"whole"),
        wire_frame(1, b"start", fin=False) + wire_frame(0, b"more", fin=False) + wire_frame(2, b"whole"),
        # Fragments, a ping between them, then the fast path again.
        wire_frame(2, b"a", fin=False) + wire_frame(9, b"") + wire_frame(0, b"b") + wire_frame(2, b"c"),
        # Unmasked, reserved bit, unknown opcode, continuation out of place.
        wire_frame(2, b"x", masked=False),
        wire_frame(2, b"x", rsv=0x40),
        wire_frame(3, b"x"),
        wire_frame(0, b"x"),
    ],
)
def test_frames_the_fast_path_must_leave_to_websockets(stream):
    run_both([stream], 1 << 20, False)
    run_both([stream[:1], stream[1:7], stream[7:]], 1 << 20, False)
