"""The envelope between nodes: what one node publishes and another reads (sans-I/O).

A msgpack array ``[version, kind, origin, *fields]``. msgpack carries only plain values (no
extension types are accepted and nothing is ever unpickled), so a message from Redis can at worst
be malformed, never executed; every envelope is size-capped before it is published.

A ``PUBLISHED`` envelope (a room's publication, positioned by the Lua script that stores it) is
the array followed by the publication frame: the script builds the frame around the offset it
gives, so the node that published cannot have packed it into the array.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import attrs
import msgpack

VERSION = 1


class EnvelopeError(ValueError):
    """An envelope that cannot be encoded (too large, not packable) or read (malformed)."""


class Kind(IntEnum):
    DELIVER = 1  # frame, room, client_id, exclude, [trace]
    REQUEST = 2  # request_id, client_id, event, data, timeout
    ANSWER = 3  # request_id, ok, value (ok) or [code, message] (error)
    DISCONNECT = 4  # client_id, code, reason
    PROBE = 5  # token: a node's liveness check of its own subscription
    PUBLISHED = 6  # room, exclude, [trace]; the publication frame follows the array
    MEMBERSHIP = 7  # client_id, room, join: a client made to join (True) or leave a room


@attrs.frozen(slots=True)
class Deliver:
    origin: str
    frame: bytes
    room: str | None
    client_id: str | None
    exclude: tuple[str, ...]
    trace: str | None = None


@attrs.frozen(slots=True)
class Request:
    origin: str
    request_id: int
    client_id: str
    event: str
    data: Any
    timeout: float


@attrs.frozen(slots=True)
class Answer:
    origin: str
    request_id: int
    ok: bool
    # The answer's value when ok, else [code, message].
    value: Any


@attrs.frozen(slots=True)
class Disconnect:
    origin: str
    client_id: str
    code: int
    reason: str


@attrs.frozen(slots=True)
class Membership:
    origin: str
    client_id: str
    room: str
    join: bool


@attrs.frozen(slots=True)
class Probe:
    origin: str
    token: int


@attrs.frozen(slots=True)
class Published:
    origin: str
    room: str
    exclude: tuple[str, ...]
    trace: str | None = None
    frame: bytes = b""  # the publication frame, after the array


Envelope = Deliver | Request | Answer | Disconnect | Probe | Published | Membership

# The trace context (a W3C traceparent) of a traced send: the last field of DELIVER and
# PUBLISHED, present only when set, so an envelope without one is what nodes of earlier
# releases read.
TRACE = "trace"

_FIELDS: dict[type, tuple[Kind, tuple[str, ...]]] = {
    Deliver: (Kind.DELIVER, ("frame", "room", "client_id", "exclude", TRACE)),
    Request: (Kind.REQUEST, ("request_id", "client_id", "event", "data", "timeout")),
    Answer: (Kind.ANSWER, ("request_id", "ok", "value")),
    Disconnect: (Kind.DISCONNECT, ("client_id", "code", "reason")),
    Probe: (Kind.PROBE, ("token",)),
    Published: (Kind.PUBLISHED, ("room", "exclude", TRACE)),
    Membership: (Kind.MEMBERSHIP, ("client_id", "room", "join")),
}
_BY_KIND = {kind: (cls, len(fields)) for cls, (kind, fields) in _FIELDS.items()}

# (type, checks) per field position, for reading: what another node sent is not trusted.
_TYPES: dict[Kind, tuple[tuple[type | tuple[type, ...], ...], ...]] = {
    Kind.DELIVER: ((bytes,), (str, type(None)), (str, type(None)), (list,), (str,)),
    Kind.REQUEST: ((int,), (str,), (str,), (object,), (int, float)),
    Kind.ANSWER: ((int,), (bool,), (object,)),
    Kind.DISCONNECT: ((str,), (int,), (str,)),
    Kind.PROBE: ((int,),),
    Kind.PUBLISHED: ((str,), (list,), (str,)),
    Kind.MEMBERSHIP: ((str,), (str,), (bool,)),
}


def encode(envelope: Envelope, max_size: int) -> bytes:
    """Pack ``envelope``; :class:`EnvelopeError` if it cannot be packed or is over ``max_size``."""
    kind, fields = _FIELDS[type(envelope)]
    values = [getattr(envelope, name) for name in fields]
    if fields[-1] == TRACE and values[-1] is None:
        values.pop()
    try:
        packed: bytes = msgpack.packb([VERSION, int(kind), envelope.origin, *values], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EnvelopeError(f"cannot send to another node: {exc}") from None
    if len(packed) > max_size:
        raise EnvelopeError(
            f"message of {len(packed)} bytes is over the {max_size}-byte limit for other nodes "
            "(redis.max_message_size)"
        )
    return packed


def decode(data: bytes, max_size: int) -> Envelope:
    """Read one envelope; :class:`EnvelopeError` names what is wrong with a bad one."""
    if len(data) > max_size:
        raise EnvelopeError(f"envelope of {len(data)} bytes is over the {max_size}-byte limit")
    unpacker = msgpack.Unpacker(raw=False, use_list=True, strict_map_key=True, ext_hook=_no_ext)
    unpacker.feed(data)
    try:
        items = unpacker.unpack()
    except EnvelopeError:
        raise
    except Exception as exc:
        raise EnvelopeError(f"not a msgpack envelope: {exc}") from None
    trailing = data[unpacker.tell() :]
    if not isinstance(items, list) or len(items) < 3:
        raise EnvelopeError("an envelope is an array [version, kind, origin, ...]")
    version, kind, origin, *values = items
    if version != VERSION:
        raise EnvelopeError(f"envelope version {version!r} is not {VERSION} (nodes of different releases?)")
    try:
        kind = Kind(kind)
    except ValueError:
        raise EnvelopeError(f"unknown envelope kind {kind!r}") from None
    cls, count = _BY_KIND[kind]
    least = count - 1 if _FIELDS[cls][1][-1] == TRACE else count
    if not isinstance(origin, str) or not least <= len(values) <= count:
        fields = f"{least} or {count}" if least < count else str(count)
        raise EnvelopeError(f"a {kind.name} envelope has an origin and {fields} fields")
    for position, (value, types) in enumerate(zip(values, _TYPES[kind], strict=False)):
        if not isinstance(value, types):
            name = _FIELDS[cls][1][position]
            raise EnvelopeError(f"field {name!r} of a {kind.name} envelope has type {type(value).__name__}")
    if kind is Kind.PUBLISHED:
        if not trailing:
            raise EnvelopeError("a PUBLISHED envelope is followed by its publication frame")
        return Published(origin, values[0], tuple(values[1]), _trace(values, 2), bytes(trailing))
    if trailing:
        raise EnvelopeError(f"{len(trailing)} bytes follow a {kind.name} envelope")
    if kind is Kind.DELIVER:
        values[3] = tuple(values[3])
    envelope: Envelope = cls(origin, *values)
    return envelope


def _trace(values: list[Any], at: int) -> str | None:
    return values[at] if len(values) > at else None


def _no_ext(code: int, data: bytes) -> Any:
    raise EnvelopeError(f"msgpack extension type {code} is not accepted")
