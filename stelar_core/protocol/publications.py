"""Room positions on the wire (sans-I/O): the publication frame and a join's ``since``.

A message published to a room that keeps history travels as a *publication* (frame type 11)::

    type=11 | eventLen | room | offset (8, BE) | epochLen (1) | epoch (ASCII) | inner frame

where the inner frame is the whole JSON (type 0) or binary (type 1) event frame, exactly as a room
without history would carry it. Every member gets the same bytes, so the wrapper is built once per
publish. ``(epoch, offset)`` is the message's *position* in the room: offsets count 1, 2, 3... per
room; the epoch names one life of the room's stream and changes when the stream was lost.
"""

from __future__ import annotations

import struct
from typing import Any, TypedDict

import attrs

from stelar_core.errors import ProtocolError
from stelar_core.protocol.codes import ErrorCode
from stelar_core.protocol.frames import Frame, FrameType, decode_frame, encode_frame

_OFFSET = struct.Struct(">QB")
# Requests named with this prefix are the protocol's own (no application handler may take one).
RESERVED_PREFIX = "$"
# The request that reads a room's history: {"room", "since"?: offset, "limit"?: n}.
HISTORY_REQUEST = "$history"
MAX_EPOCH_LENGTH = 64
MAX_OFFSET = 2**53 - 1  # what a JavaScript number holds exactly


@attrs.frozen(slots=True)
class Position:
    """Where a message is in its room's stream: offsets are consecutive within one epoch."""

    epoch: str
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "offset": self.offset}


@attrs.frozen(slots=True)
class Publication:
    """A decoded publication: the room, the position and the event frame it carries."""

    room: str
    position: Position
    frame: Frame


def encode_publication(room: str, epoch: str, offset: int, inner: bytes) -> bytes:
    """Wrap the encoded event frame ``inner`` with its room and position."""
    epoch_bytes = epoch.encode("ascii")
    return encode_frame(
        FrameType.PUBLICATION, room, _OFFSET.pack(offset, len(epoch_bytes)) + epoch_bytes + inner
    )


def decode_publication(frame: Frame) -> Publication:
    """Read a type-11 frame; ``ProtocolError(invalid_frame)`` says what does not hold together."""
    payload = frame.payload
    if len(payload) < _OFFSET.size:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "publication ends before its offset and epoch length")
    offset, epoch_length = _OFFSET.unpack_from(payload)
    start = _OFFSET.size + epoch_length
    if start > len(payload):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "publication ends inside its epoch")
    try:
        epoch = payload[_OFFSET.size : start].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "publication epoch is not ASCII") from None
    inner = decode_frame(payload[start:])
    if inner.type is not FrameType.JSON and inner.type is not FrameType.BINARY:
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, f"a publication carries an event frame, not {inner.type.name}"
        )
    return Publication(frame.event, Position(epoch, offset), inner)


def read_since(payload: Any) -> Position | None:
    """The position a ``join`` asks to recover from: ``{"since": {"epoch", "offset"}}``, or
    None for a plain join (an empty payload). ``ProtocolError(invalid_frame)`` names a bad one."""
    if payload is None:
        return None
    since = payload.get("since") if isinstance(payload, dict) else payload
    if since is None:
        return None
    if not isinstance(since, dict):
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, 'a join payload is {"since": {"epoch": ..., "offset": ...}}'
        )
    epoch, offset = since.get("epoch"), since.get("offset")
    if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH_LENGTH or not epoch.isascii():
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, f"since.epoch must be 1..{MAX_EPOCH_LENGTH} ASCII characters"
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ProtocolError(ErrorCode.INVALID_FRAME, f"since.offset must be an integer in 0..{MAX_OFFSET}")
    return Position(epoch, offset)


class PositionJson(TypedDict):
    """A position as JSON: in join answers, ``since`` and history pages."""

    epoch: str
    offset: int


# (Required keys in a base class, optional ones in a total=False subclass: ``Required[...]`` is
# not seen under ``from __future__ import annotations`` on Python 3.11.)
class _HistoryRoom(TypedDict):
    room: str


class HistoryQuery(_HistoryRoom, total=False):
    """The payload of a ``$history`` request."""

    since: int
    limit: int


class _HistoryPlace(TypedDict):
    offset: int
    event: str


class HistoryEntryJson(_HistoryPlace, total=False):
    """One publication of a history page: ``data`` (JSON), or ``binary`` (base64)."""

    data: Any
    binary: str


class HistoryAnswer(TypedDict):
    """The answer to a ``$history`` request."""

    position: PositionJson
    publications: list[HistoryEntryJson]


def read_history_request(payload: Any, max_limit: int) -> tuple[str, int | None, int]:
    """``(room, since, limit)`` of a ``$history`` request, the limit capped at ``max_limit``;
    ``ProtocolError(invalid_frame)`` names what is wrong with a bad one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("room"), str) or not payload["room"]:
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, '$history takes {"room": ..., "since"?: offset, "limit"?: n}'
        )
    since, limit = payload.get("since"), payload.get("limit", min(100, max_limit))
    if since is not None and (type(since) is not int or not 0 <= since <= MAX_OFFSET):
        raise ProtocolError(ErrorCode.INVALID_FRAME, f"$history since must be an offset in 0..{MAX_OFFSET}")
    if type(limit) is not int or limit < 1:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "$history limit must be an integer >= 1")
    return payload["room"], since, min(limit, max_limit)
