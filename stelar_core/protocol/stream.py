"""Length-prefixed framing for stream transports (TCP): ``length (4, BE) | frame``."""

from __future__ import annotations

import struct

from stelar_core.errors import ProtocolError
from stelar_core.protocol.codes import ErrorCode
from stelar_core.protocol.frames import HEADER_SIZE

_LENGTH = struct.Struct(">I")
LENGTH_PREFIX_SIZE = _LENGTH.size


def length_prefixed(frame: bytes) -> bytes:
    """The bytes a stream transport writes for one encoded frame."""
    return _LENGTH.pack(len(frame)) + frame


class StreamParser:
    """Incremental parser in the style of h11: ``receive_data`` then ``next_frame`` until None.

    Frames come back still encoded (``decode_frame`` turns them into :class:`Frame`). A declared
    length above ``max_frame_size`` is rejected as soon as its 4 prefix bytes are in, before any
    of its body is kept, so a peer never makes us hold more than one partial frame plus one read.
    Frames that arrived before a bad one are returned first: nothing valid is lost. After an
    error the stream has lost its framing: every later call raises and the connection must close.
    """

    __slots__ = ("_buffer", "_error", "_offset", "max_frame_size")

    def __init__(self, max_frame_size: int) -> None:
        if max_frame_size < HEADER_SIZE:
            raise ValueError(f"max_frame_size must be at least {HEADER_SIZE}, got {max_frame_size}")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._offset = 0
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return len(self._buffer) - self._offset

    def receive_data(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next whole frame, or None when more bytes are needed."""
        if self._error is not None:
            raise self._error
        buffer, offset = self._buffer, self._offset
        available = len(buffer) - offset
        if available >= LENGTH_PREFIX_SIZE:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            problem = self._length_problem(length)
            if problem is not None:
                self._error = problem
                buffer.clear()
                self._offset = 0
                raise problem
            if available - LENGTH_PREFIX_SIZE >= length:
                start = offset + LENGTH_PREFIX_SIZE
                self._offset = start + length
                return bytes(buffer[start : self._offset])
        # Compact only when we stop, so a read holding many frames costs one copy, not one each.
        del buffer[:offset]
        self._offset = 0
        return None

    def _length_problem(self, length: int) -> ProtocolError | None:
        if length > self.max_frame_size:
            return ProtocolError(
                ErrorCode.FRAME_TOO_LARGE,
                f"declared frame length {length} exceeds max_frame_size {self.max_frame_size}",
            )
        if length < HEADER_SIZE:
            return ProtocolError(
                ErrorCode.INVALID_FRAME,
                f"declared frame length {length} is shorter than the {HEADER_SIZE}-byte header",
            )
        return None
