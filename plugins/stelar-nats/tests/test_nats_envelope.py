"""The envelope and the subjects, byte by byte (sans-I/O): what a node sends is read back as
sent, and whatever else arrives on a subject is refused with what is wrong with it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stelar_nats.envelope import (
    Envelope,
    EnvelopeError,
    Kind,
    decode,
    encode,
    json_body,
    read_json,
    trace_of,
    with_trace,
)
from stelar_nats.subjects import Subjects, token

LIMIT = 1024 * 1024
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_every_kind_reads_back_as_sent():
    for envelope in (
        Envelope(Kind.DELIVER, "n1", ("room", None, ["a", "b"]), b"\x00frame"),
        Envelope(Kind.DELIVER, "n1", (None, "client", []), b"frame"),
        Envelope(Kind.DELIVER, "n1", with_trace(("room", None, []), TRACEPARENT), b"frame"),
        Envelope(Kind.PUBLISHED, "n1", with_trace(("room", ["a"]), TRACEPARENT), b"\x0bpublication"),
        Envelope(Kind.PUBLISHED, "n1", with_trace(("room", []), None), b"\x0bpublication"),
        Envelope(Kind.REQUEST, "n1", ("c1", "echo", 2.5), json_body({"x": [1, 2]})),
        Envelope(Kind.ANSWER, "n2", (True,), json_body("pong")),
        Envelope(Kind.DISCONNECT, "n1", ("c1", 4001, "bye")),
        Envelope(Kind.MEMBERSHIP, "n1", ("c1", "room", False)),
        Envelope(Kind.HEARTBEAT, "n1", (True,), json_body({"connections": 3})),
        Envelope(Kind.READ, "n1", ("members", "room")),
        Envelope(Kind.PROBE, "n1", (7,)),
    ):
        assert decode(encode(envelope, LIMIT), LIMIT) == envelope


def test_a_trace_context_is_read_back_and_absent_when_not_sent():
    traced = decode(
        encode(Envelope(Kind.DELIVER, "n", with_trace((None, None, []), TRACEPARENT)), LIMIT), LIMIT
    )
    assert trace_of(traced) == TRACEPARENT
    plain = decode(encode(Envelope(Kind.DELIVER, "n", with_trace((None, None, []), None)), LIMIT), LIMIT)
    assert plain.fields == (None, None, [])  # what nodes of earlier releases read
    assert trace_of(plain) is None


@given(room=st.text(), frame=st.binary(max_size=256), exclude=st.lists(st.text(max_size=8), max_size=4))
def test_any_room_frame_and_exclusion_survive(room, frame, exclude):
    envelope = Envelope(Kind.DELIVER, "node", (room, None, exclude), frame)
    assert decode(encode(envelope, LIMIT), LIMIT) == envelope


def _raw(head: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">H", len(head)) + head + body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "has no head"),
        (b"\x00", "has no head"),
        (struct.pack(">H", 50) + b"[1]", "runs past the envelope"),
        (_raw(b"not json"), "not JSON"),
        (_raw(b'{"a": 1}'), "is an array"),
        (_raw(b'[2, "d", "n", null, null, []]'), "version 2 is not 1"),
        (_raw(b'[1, "z", "n"]'), "unknown envelope kind 'z'"),
        (_raw(b'[1, "d", "n", null]'), "has an origin and 3 fields"),
        (_raw(b'[1, "d", 7, null, null, []]'), "has an origin and 3 fields"),
        (_raw(b'[1, "x", "n", "c", "4001", "r"]'), "field 1 of a DISCONNECT envelope has type str"),
        (_raw(b'[1, "x", "n", "c", true, "r"]'), "field 1 of a DISCONNECT envelope has type bool"),
        (_raw(b'[1, "d", "n", null, null, [1]]'), "excludes client IDs, which are strings"),
        (_raw(b'[1, "d", "n", null, null, [], 7]'), "field 3 of a DELIVER envelope has type int"),
        (_raw(b'[1, "d", "n", null, null, [], "t", "x"]'), "has an origin and 3 fields"),
        (_raw(b'[1, "p", "n", "room", [], 1]'), "field 2 of a PUBLISHED envelope has type int"),
    ],
)
def test_a_bad_envelope_says_what_is_wrong(data, message):
    with pytest.raises(EnvelopeError, match=message):
        decode(data, LIMIT)


def test_sizes_are_capped_both_ways():
    big = Envelope(Kind.DELIVER, "n", ("r", None, []), b"x" * 2048)
    with pytest.raises(EnvelopeError, match="over the 2048-byte limit for other nodes"):
        encode(big, 2048)
    with pytest.raises(EnvelopeError, match="over the 1024-byte limit"):
        decode(encode(big, LIMIT), 1024)


def test_what_json_cannot_carry_is_refused_when_sent():
    with pytest.raises(EnvelopeError, match="cannot send to another node"):
        json_body(object())
    with pytest.raises(EnvelopeError, match="not JSON"):
        read_json(b"{")


@given(st.text())
def test_any_name_is_one_valid_token(name):
    encoded = token(name)
    assert encoded.startswith("_") and not any(c in encoded for c in ".*> \t\r\n")


def test_distinct_names_get_distinct_subjects():
    subjects = Subjects("app.one")
    assert subjects.room("a.b") != subjects.room("a*b") != subjects.room("")
    assert subjects.room("x").startswith("app.one.room.") and subjects.all == "app.one.all"


@pytest.mark.parametrize("prefix", ["", "a b", "a..b", "a.*", ">"])
def test_a_prefix_that_is_not_subject_tokens_is_refused(prefix):
    with pytest.raises(ValueError, match="expected NATS tokens"):
        Subjects(prefix)
