"""The frame codec, byte by byte."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stelar_core.errors import ProtocolError
from stelar_core.protocol import ErrorCode, Frame, FrameType, decode_frame, dump_json, encode_frame, load_json


def test_json_event_layout_is_type_length_event_payload():
    data = encode_frame(FrameType.JSON, "chat", b'{"a":1}')
    assert data == b"\x00\x00\x04chat" + b'{"a":1}'


def test_ack_request_carries_big_endian_ack_id_after_the_event():
    data = encode_frame(FrameType.ACK_REQUEST, "get", b"{}", ack_id=0x01020304)
    assert data == b"\x04\x00\x03get\x01\x02\x03\x04{}"
    assert decode_frame(data) == Frame(FrameType.ACK_REQUEST, "get", b"{}", 0x01020304)


def test_ping_with_empty_event_and_payload_is_three_bytes():
    assert encode_frame(FrameType.PING) == b"\x02\x00\x00"
    assert decode_frame(b"\x02\x00\x00") == Frame(FrameType.PING)


def test_event_names_are_utf8():
    data = encode_frame(FrameType.JSON, "héllo", b"1")
    assert data[1:3] == struct.pack(">H", len("héllo".encode()))
    assert decode_frame(data).event == "héllo"


@given(
    frame_type=st.sampled_from(
        [t for t in FrameType if t not in (FrameType.ACK_REQUEST, FrameType.ACK_RESPONSE)]
    ),
    event=st.text(max_size=50),
    payload=st.binary(max_size=200),
)
def test_round_trip_without_ack_id(frame_type, event, payload):
    assert decode_frame(encode_frame(frame_type, event, payload)) == Frame(frame_type, event, payload)


@given(
    frame_type=st.sampled_from([FrameType.ACK_REQUEST, FrameType.ACK_RESPONSE]),
    event=st.text(max_size=50),
    payload=st.binary(max_size=200),
    ack_id=st.integers(0, 2**32 - 1),
)
def test_round_trip_with_ack_id(frame_type, event, payload, ack_id):
    assert decode_frame(encode_frame(frame_type, event, payload, ack_id)) == Frame(
        frame_type, event, payload, ack_id
    )


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data):
    try:
        frame = decode_frame(data)
    except ProtocolError as exc:
        assert exc.code in {ErrorCode.INVALID_FRAME, ErrorCode.INVALID_EVENT}
        assert exc.reason
    else:
        assert isinstance(frame, Frame)


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (b"", ErrorCode.INVALID_FRAME, "shorter than the 3-byte header"),
        (b"\x00\x00", ErrorCode.INVALID_FRAME, "shorter than the 3-byte header"),
        (b"\x0e\x00\x00", ErrorCode.INVALID_FRAME, "unknown frame type 14"),
        (b"\xff\x00\x00", ErrorCode.INVALID_FRAME, "unknown frame type 255"),
        (b"\x00\x00\x05abc", ErrorCode.INVALID_FRAME, "event length 5 runs past the end of a 6-byte frame"),
        (b"\x00\x00\x02\xc3\x28", ErrorCode.INVALID_EVENT, "event name is not valid UTF-8"),
        (
            b"\x04\x00\x01a\x00\x00",
            ErrorCode.INVALID_FRAME,
            "ACK_REQUEST frame ends before its 4-byte ack id",
        ),
        (b"\x05\x00\x00", ErrorCode.INVALID_FRAME, "ACK_RESPONSE frame ends before its 4-byte ack id"),
    ],
)
def test_malformed_frames_name_what_is_wrong(data, code, reason):
    with pytest.raises(ProtocolError) as info:
        decode_frame(data)
    assert info.value.code == code
    assert reason in info.value.reason


def test_invalid_json_payload_is_a_protocol_error_with_detail():
    frame = decode_frame(b"\x00\x00\x01e{nope")
    with pytest.raises(ProtocolError) as info:
        frame.json()
    assert info.value.code == ErrorCode.INVALID_JSON
    assert "not valid JSON" in info.value.reason


def test_invalid_utf8_in_json_payload():
    with pytest.raises(ProtocolError, match="not valid UTF-8") as info:
        load_json(b'"\xff"')
    assert info.value.code == ErrorCode.INVALID_JSON


def test_empty_payload_is_none():
    assert decode_frame(b"\x00\x00\x01e").json() is None


def test_dump_json_is_compact_utf8_like_javascript():
    assert dump_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
    assert dump_json({1: float("nan"), "b": float("inf")}) == b'{"1":null,"b":null}'
    with pytest.raises(TypeError):
        dump_json({"x": object()})


def test_load_json_rejects_what_json_cannot_be():
    for bad in (b"NaN", b"{'a':1}", b"[1,]", b"\xff"):
        with pytest.raises(ProtocolError) as info:
            load_json(bad)
        assert info.value.code == ErrorCode.INVALID_JSON


def test_encode_refuses_an_event_longer_than_the_wire_allows():
    with pytest.raises(ValueError, match="at most 65535"):
        encode_frame(FrameType.JSON, "x" * 65536)


def test_encode_requires_ack_id_exactly_for_ack_frames():
    with pytest.raises(ValueError, match="needs an ack id"):
        encode_frame(FrameType.ACK_REQUEST, "e")
    with pytest.raises(ValueError, match="needs an ack id"):
        encode_frame(FrameType.ACK_RESPONSE, "e", ack_id=2**32)
    with pytest.raises(ValueError, match="carries no ack id"):
        encode_frame(FrameType.JSON, "e", ack_id=1)
