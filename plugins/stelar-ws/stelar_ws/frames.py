"""The fast path of a server's inbound WebSocket frames (sans-I/O: bytes in, items out).

Nearly every frame a stelar client sends is one whole binary message: final, masked, not
compressed, small. :class:`InboundSplitter` cuts the byte stream at frame boundaries, unmasks
those frames itself, and hands every other frame (text, fragments, control frames, anything
malformed, large or unusual) to the ``websockets`` state machine, byte for byte and in order,
so that the library still decides everything but the common case. The library's frame parser
is a generator reading through a stream reader, several calls per frame; here the common frame
costs one header check and one C call (``apply_mask``).

:class:`InboundFrames` puts the two together for an open connection: it must start at a frame
boundary (the first byte after the HTTP request), sees every later byte, and gives the stream
back to the library for good once the connection is no longer open (a close handshake).
"""

from __future__ import annotations

from collections.abc import Iterator

from websockets.frames import Frame
from websockets.protocol import State
from websockets.server import ServerProtocol

try:  # the C implementation websockets ships, as websockets itself picks it
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a build without the extension
    from websockets.utils import apply_mask

# The largest payload the fast path takes; longer messages go through the library, which
# reads them in pieces instead of holding a whole frame here.
FAST_PATH_MAX = 65535

_FIN_BINARY = 0x82  # FIN set, no reserved bits, opcode 2
_MASKED = 0x80
_FIN = 0x80
_OPCODE = 0x0F
_CONTINUATION, _TEXT, _BINARY = 0, 1, 2

Item = tuple[bool, bytes]
"""``(True, payload)``: one binary message, unmasked; ``(False, data)``: bytes for the library."""


class InboundSplitter:
    """Splits a server's inbound stream into fast-path messages and bytes for the library.

    ``max_size`` is the connection's message-size limit: a frame above it, or above
    :data:`FAST_PATH_MAX`, goes to the library (which enforces the limit). Held bytes never
    exceed one fast-path frame (its header and at most ``FAST_PATH_MAX`` bytes)."""

    __slots__ = ("_buffer", "_fragmented", "_library_bytes", "_max_fast", "_offset")

    def __init__(self, max_size: int) -> None:
        self._max_fast = min(max_size, FAST_PATH_MAX)
        self._buffer = b""
        self._offset = 0
        self._library_bytes = 0  # what remains of the frame the library is being given
        # Inside a fragmented message (its frames all go to the library): websockets' state,
        # followed from the frame headers, since a final binary frame there is its error to raise.
        self._fragmented = False

    def feed(self, data: bytes) -> None:
        if self._offset < len(self._buffer):
            self._buffer = self._buffer[self._offset :] + data
        else:
            self._buffer = data
        self._offset = 0

    def next(self) -> Item | None:
        """The next item, or None until more bytes come."""
        buffer, offset = self._buffer, self._offset
        available = len(buffer) - offset
        if available <= 0:
            self._buffer, self._offset = b"", 0  # an idle connection holds no read buffer
            return None
        if self._library_bytes:
            taken = min(self._library_bytes, available)
            self._library_bytes -= taken
            self._offset = offset + taken
            return False, buffer[offset : offset + taken]
        if available < 2:
            return self._wait()
        first, second = buffer[offset], buffer[offset + 1]
        length = second & 0x7F
        header = 2
        if length == 126:
            header = 4
        elif length == 127:
            header = 10
        if second & _MASKED:
            header += 4
        if available < header:
            return self._wait()
        if length == 126:
            length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
        elif length == 127:
            length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
        if first == _FIN_BINARY and second & _MASKED and length <= self._max_fast and not self._fragmented:
            end = offset + header + length
            if end > len(buffer):
                return self._wait()
            self._offset = end
            return True, apply_mask(
                buffer[offset + header : end], buffer[offset + header - 4 : offset + header]
            )
        opcode = first & _OPCODE
        if opcode in (_TEXT, _BINARY):
            self._fragmented = not first & _FIN
        elif opcode == _CONTINUATION and first & _FIN:
            self._fragmented = False
        self._library_bytes = header + length
        return self.next()

    def _wait(self) -> Item | None:
        """No item yet: keep only the start of the incomplete frame until more bytes come."""
        if self._offset:
            self._buffer, self._offset = self._buffer[self._offset :], 0
        return None

    def rest(self) -> bytes:
        """The bytes not yet split, for the library once it takes the stream back."""
        rest = self._buffer[self._offset :]
        self._buffer, self._offset, self._library_bytes = b"", 0, 0
        return rest


class InboundFrames:
    """What an open server connection receives: ``bytes`` (one binary message, whole, from the
    fast path) or the library's :class:`~websockets.frames.Frame` events, in the order sent.

    Uncompressed connections only (a compressed message's bytes are the library's to inflate).
    The library sees every byte the fast path does not take; what it has to send in answer
    (pongs, a close frame) is in ``protocol.data_to_send()`` as usual."""

    __slots__ = ("_protocol", "_splitter", "library_fed")

    def __init__(self, protocol: ServerProtocol) -> None:
        self._protocol = protocol
        # Set when the library was given bytes (it may have output to send); the caller resets it.
        self.library_fed = False
        max_size = protocol.max_message_size
        self._splitter: InboundSplitter | None = InboundSplitter(
            FAST_PATH_MAX if max_size is None else max_size
        )

    def receive(self, data: bytes) -> Iterator[bytes | Frame]:
        """The messages and frames in ``data``; a consumer that closes the connection while
        iterating makes the rest go through the library (which then reads the close handshake)."""
        splitter = self._splitter
        if splitter is None:
            yield from self._library(data)
            return
        splitter.feed(data)
        protocol = self._protocol
        while (item := splitter.next()) is not None:
            is_message, chunk = item
            if is_message:
                yield chunk
            else:
                yield from self._library(chunk)
            if protocol.state is not State.OPEN:
                yield from self._library(self._stop())
                return

    def receive_eof(self) -> None:
        """The peer closed its side: the library gets the incomplete rest, then the end."""
        rest = self._stop()
        if rest:
            self._protocol.receive_data(rest)
        self._protocol.receive_eof()

    def _stop(self) -> bytes:
        splitter, self._splitter = self._splitter, None
        return splitter.rest() if splitter is not None else b""

    def _library(self, data: bytes) -> Iterator[Frame]:
        if data:
            self.library_fed = True
            self._protocol.receive_data(data)
            for event in self._protocol.events_received():
                assert isinstance(event, Frame)  # the request came before this connection opened
                yield event
