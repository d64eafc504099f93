"""The envelope between nodes, byte by byte (sans-I/O): versioned, size-capped, plain values
only; whatever arrives malformed is refused with a reason, never executed."""

import contextlib
import pickle

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stelar_redis.envelope import (
    VERSION,
    Answer,
    Deliver,
    Disconnect,
    EnvelopeError,
    Membership,
    Probe,
    Published,
    Request,
    decode,
    encode,
)

LIMIT = 64 * 1024
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    "envelope",
    [
        Deliver("node-a", b"\x01frame", "room", None, ("x", "y")),
        Deliver("node-a", b"", None, "client-1", ()),
        Deliver("node-a", b"\x01frame", "room", None, (), TRACEPARENT),
        Request("node-a", 7, "client-1", "get_user", {"id": 1, "tags": ["a"]}, 2.5),
        Answer("node-b", 7, True, {"name": "John"}),
        Answer("node-b", 8, False, ["handler_error", "boom"]),
        Disconnect("node-a", "client-1", 4001, "bye"),
        Probe("node-a", 3),
        Membership("emitter-1", "client-1", "vip", True),
        Membership("node-a", "client-1", "vip", False),
    ],
)
def test_every_kind_round_trips(envelope):
    assert decode(encode(envelope, LIMIT), LIMIT) == envelope


def test_the_wire_form_is_a_versioned_msgpack_array():
    packed = encode(Probe("n1", 9), LIMIT)
    assert msgpack.unpackb(packed) == [VERSION, 5, "n1", 9]


def test_the_trace_context_is_written_only_when_there_is_one():
    """An untraced envelope is what nodes of earlier releases read, field for field."""
    assert msgpack.unpackb(encode(Deliver("n", b"f", "r", None, ()), LIMIT)) == [
        VERSION,
        1,
        "n",
        b"f",
        "r",
        None,
        [],
    ]
    traced = msgpack.unpackb(encode(Deliver("n", b"f", "r", None, (), TRACEPARENT), LIMIT))
    assert traced == [VERSION, 1, "n", b"f", "r", None, [], TRACEPARENT]


@pytest.mark.parametrize("trace", [TRACEPARENT, None])
def test_a_published_envelope_is_read_with_the_frame_the_script_puts_after_it(trace):
    head = encode(Published("node-a", "room", ("x",), trace), LIMIT)
    assert decode(head + b"\x0bpublication", LIMIT) == Published(
        "node-a", "room", ("x",), trace, b"\x0bpublication"
    )


def test_too_large_is_refused_on_both_sides():
    big = Deliver("n", b"x" * 2000, "r", None, ())
    with pytest.raises(EnvelopeError, match="over the 1024-byte limit for other nodes"):
        encode(big, 1024)
    with pytest.raises(EnvelopeError, match="over the 1024-byte limit"):
        decode(encode(big, LIMIT), 1024)


def test_data_msgpack_cannot_carry_is_refused_when_sending():
    with pytest.raises(EnvelopeError, match="cannot send to another node"):
        encode(Request("n", 1, "c", "e", {"when": object()}, 1.0), LIMIT)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "not a msgpack envelope"),
        (msgpack.packb({"v": 1}), r"an envelope is an array \[version, kind, origin, ...\]"),
        (msgpack.packb([2, 5, "n", 1]), "envelope version 2 is not 1"),
        (msgpack.packb([1, 99, "n"]), "unknown envelope kind 99"),
        (msgpack.packb([1, 5, "n"]), "a PROBE envelope has an origin and 1 fields"),
        (msgpack.packb([1, 5, 3, 1]), "a PROBE envelope has an origin and 1 fields"),
        (msgpack.packb([1, 4, "n", "c", "4001", "r"]), "field 'code' of a DISCONNECT envelope has type str"),
        (
            msgpack.packb([1, 1, "n", "text", None, None, []]),
            "field 'frame' of a DELIVER envelope has type str",
        ),
        (msgpack.packb([1, 5, "n", msgpack.ExtType(1, b"x")]), "extension type 1 is not accepted"),
        (
            msgpack.packb([1, 1, "n", b"f", "r", None, [], 7]),
            "field 'trace' of a DELIVER envelope has type int",
        ),
        (
            msgpack.packb([1, 1, "n", b"f", "r", None, [], "t", "x"]),
            "a DELIVER envelope has an origin and 4 or 5",
        ),
        (msgpack.packb([1, 7, "n", "c", "room", 1]), "field 'join' of a MEMBERSHIP envelope has type int"),
        (pickle.dumps(Probe("n", 1)), "not a msgpack envelope|an envelope is an array"),
    ],
)
def test_malformed_envelopes_name_what_is_wrong(data, reason):
    with pytest.raises(EnvelopeError, match=reason):
        decode(data, LIMIT)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_fail_with_envelope_error(data):
    # Anything but an envelope or an EnvelopeError (a crash, an ext object) fails the test.
    with contextlib.suppress(EnvelopeError):
        assert isinstance(decode(data, LIMIT), (Deliver, Request, Answer, Disconnect, Probe))
