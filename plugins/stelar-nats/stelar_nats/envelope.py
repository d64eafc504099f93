"""The envelope between nodes on NATS: what one node publishes and another reads (sans-I/O).

``length (2 bytes, big-endian) | head | body``: the head is a JSON array ``[version, kind,
origin, *fields]``, the body the bytes the kind carries (an encoded frame, a request's JSON data,
an answer). Frames travel as they are, never re-encoded; JSON carries only plain values, so a
message from NATS can at worst be malformed, never executed. Every envelope is size-capped
before it is published and when it is read.
"""

from __future__ import annotations

import struct
from enum import Enum
from typing import Any

import attrs

from stelar_core.plugin_api import ProtocolError, dump_json, load_json

VERSION = 1
_LENGTH = struct.Struct(">H")


class EnvelopeError(ValueError):
    """An envelope that cannot be encoded (too large, not JSON) or read (malformed)."""


class Kind(Enum):
    DELIVER = "d"  # room, client_id, exclude, [trace] | frame (a reply subject asks whether it was delivered)
    REQUEST = "q"  # client_id, event, timeout | JSON data
    ANSWER = "a"  # ok | JSON value when ok, else JSON [code, message]
    DISCONNECT = "x"  # client_id, code, reason
    MEMBERSHIP = "m"  # client_id, room, join
    HEARTBEAT = "h"  # alive | JSON statistics (alive) ; a node stopping says goodbye (not alive)
    READ = "r"  # what, argument: a question to one node about its clients and rooms
    PUBLISHED = "p"  # room, exclude, [trace] | publication frame (a room with history, positioned)
    EPOCH = "e"  # room, epoch: the first message of a room's history (history.py)
    PROBE = "b"  # number: sent by a node to itself, behind its subscriptions (see broker.py)


@attrs.frozen(slots=True)
class Envelope:
    kind: Kind
    origin: str
    fields: tuple[Any, ...]
    body: bytes = b""


_OPTIONAL_TEXT = (str, type(None))
# The type of each field, for reading: what another node sent is not trusted.
_TYPES: dict[Kind, tuple[type | tuple[type, ...], ...]] = {
    Kind.DELIVER: (_OPTIONAL_TEXT, _OPTIONAL_TEXT, list),
    Kind.REQUEST: (str, str, (int, float)),
    Kind.ANSWER: (bool,),
    Kind.DISCONNECT: (str, int, str),
    Kind.MEMBERSHIP: (str, str, bool),
    Kind.HEARTBEAT: (bool,),
    Kind.READ: (str, str),
    Kind.PUBLISHED: (str, list),
    Kind.EPOCH: (str, str),
    Kind.PROBE: (int,),
}
_BY_CODE = {kind.value: kind for kind in Kind}
# Where the excluded client IDs are in what delivers to clients; such envelopes may end with the
# trace context of a traced send (a W3C traceparent), written only when there is one, so an
# envelope without it is what nodes of earlier releases read.
_EXCLUDE_AT = {Kind.DELIVER: 2, Kind.PUBLISHED: 1}


def with_trace(fields: tuple[Any, ...], trace: str | None) -> tuple[Any, ...]:
    """The fields of a DELIVER or PUBLISHED envelope, with the trace context if any."""
    return fields if trace is None else (*fields, trace)


def trace_of(envelope: Envelope) -> str | None:
    """The trace context a DELIVER or PUBLISHED envelope carries, or None."""
    fields = envelope.fields
    trace = fields[-1] if len(fields) == len(_TYPES[envelope.kind]) + 1 else None
    return trace if isinstance(trace, str) else None


def encode(envelope: Envelope, max_size: int) -> bytes:
    """Pack ``envelope``; :class:`EnvelopeError` if its fields are not JSON or it is over
    ``max_size``."""
    try:
        head = dump_json([VERSION, envelope.kind.value, envelope.origin, *envelope.fields])
    except TypeError as exc:
        raise EnvelopeError(f"cannot send to another node: {exc}") from None
    if len(head) > 0xFFFF:
        raise EnvelopeError(f"an envelope's head of {len(head)} bytes is over 65535 bytes")
    size = _LENGTH.size + len(head) + len(envelope.body)
    if size > max_size:
        raise EnvelopeError(
            f"message of {size} bytes is over the {max_size}-byte limit for other nodes "
            "(nats.max_message_size)"
        )
    return b"".join((_LENGTH.pack(len(head)), head, envelope.body))


def json_body(value: Any) -> bytes:
    """``value`` as a body; :class:`EnvelopeError` when JSON cannot carry it."""
    try:
        return dump_json(value)
    except TypeError as exc:
        raise EnvelopeError(f"cannot send to another node: {exc}") from None


def read_json(body: bytes) -> Any:
    """A body written by :func:`json_body`; :class:`EnvelopeError` when it is not JSON."""
    try:
        return load_json(body)
    except ProtocolError as exc:
        raise EnvelopeError(f"a body that is not JSON: {exc}") from None


def decode(data: bytes, max_size: int) -> Envelope:
    """Read one envelope; :class:`EnvelopeError` names what is wrong with a bad one."""
    if len(data) > max_size:
        raise EnvelopeError(f"envelope of {len(data)} bytes is over the {max_size}-byte limit")
    if len(data) < _LENGTH.size:
        raise EnvelopeError(f"an envelope of {len(data)} bytes has no head")
    (length,) = _LENGTH.unpack_from(data)
    end = _LENGTH.size + length
    if end > len(data):
        raise EnvelopeError(f"the head's length {length} runs past the envelope's {len(data)} bytes")
    items = read_json(data[_LENGTH.size : end])
    if not isinstance(items, list) or len(items) < 3:
        raise EnvelopeError("an envelope's head is an array [version, kind, origin, ...]")
    version, code, origin, *fields = items
    if version != VERSION:
        raise EnvelopeError(f"envelope version {version!r} is not {VERSION} (nodes of different releases?)")
    kind = _BY_CODE.get(code) if isinstance(code, str) else None
    if kind is None:
        raise EnvelopeError(f"unknown envelope kind {code!r}")
    types = _TYPES[kind]
    exclude_at = _EXCLUDE_AT.get(kind)
    if exclude_at is not None and len(fields) == len(types) + 1:
        types = (*types, str)
    if not isinstance(origin, str) or len(fields) != len(types):
        raise EnvelopeError(f"a {kind.name} envelope has an origin and {len(types)} fields")
    for position, (value, expected) in enumerate(zip(fields, types, strict=True)):
        # (bool is an int to Python: a code or a timeout must not be one.)
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in _flat(expected)):
            raise EnvelopeError(f"field {position} of a {kind.name} envelope has type {type(value).__name__}")
    if exclude_at is not None and not all(isinstance(item, str) for item in fields[exclude_at]):
        raise EnvelopeError(f"a {kind.name} envelope excludes client IDs, which are strings")
    return Envelope(kind, origin, tuple(fields), data[end:])


def _flat(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)
