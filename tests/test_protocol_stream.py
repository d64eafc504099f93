"""The length-prefixed stream parser used by stream transports, byte by byte."""

import struct

import pytest

from stelar_core.errors import ProtocolError
from stelar_core.protocol import ErrorCode, FrameType, StreamParser, encode_frame, length_prefixed


def drain(parser: StreamParser) -> list[bytes]:
    frames = []
    while (frame := parser.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_length_prefix_is_four_bytes_big_endian():
    frame = encode_frame(FrameType.JSON, "e", b"1")
    assert length_prefixed(frame) == struct.pack(">I", len(frame)) + frame


def test_a_frame_trickled_one_byte_at_a_time_comes_out_once_whole():
    frame = encode_frame(FrameType.JSON, "chat", b'{"text":"hello"}')
    wire = length_prefixed(frame)
    parser = StreamParser(1024)
    seen = []
    for index in range(len(wire)):
        parser.receive_data(wire[index : index + 1])
        seen.extend(drain(parser))
        if index < len(wire) - 1:
            assert seen == []
    assert seen == [frame]
    assert parser.buffered == 0


def test_a_thousand_frames_in_one_write_come_out_in_order():
    frames = [encode_frame(FrameType.JSON, "n", str(i).encode()) for i in range(1000)]
    parser = StreamParser(1024)
    parser.receive_data(b"".join(length_prefixed(f) for f in frames))
    assert drain(parser) == frames
    assert parser.buffered == 0


def test_a_frame_split_across_writes_at_every_position():
    frames = [encode_frame(FrameType.JSON, "a", b"1"), encode_frame(FrameType.BINARY, "b", b"\x00" * 10)]
    wire = b"".join(length_prefixed(f) for f in frames)
    for cut in range(len(wire) + 1):
        parser = StreamParser(1024)
        parser.receive_data(wire[:cut])
        out = drain(parser)
        parser.receive_data(wire[cut:])
        out += drain(parser)
        assert out == frames, cut


def test_oversized_length_is_rejected_as_soon_as_the_prefix_is_in():
    parser = StreamParser(max_frame_size=100)
    parser.receive_data(struct.pack(">I", 101))
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE
    assert "101 exceeds max_frame_size 100" in info.value.reason
    assert parser.buffered == 0


def test_oversized_body_is_never_accumulated():
    parser = StreamParser(max_frame_size=100)
    parser.receive_data(struct.pack(">I", 10_000_000) + b"x" * 50)
    with pytest.raises(ProtocolError):
        parser.next_frame()
    assert parser.buffered == 0
    with pytest.raises(ProtocolError):
        parser.receive_data(b"x" * 50)
    assert parser.buffered == 0


@pytest.mark.parametrize("length", [0, 1, 2])
def test_lengths_shorter_than_the_header_are_rejected(length):
    parser = StreamParser(100)
    parser.receive_data(struct.pack(">I", length) + b"\x00" * length)
    with pytest.raises(ProtocolError) as info:
        parser.next_frame()
    assert info.value.code == ErrorCode.INVALID_FRAME
    assert f"declared frame length {length} is shorter than the 3-byte header" in info.value.reason


def test_frames_before_a_bad_length_are_delivered_and_then_the_error():
    good = encode_frame(FrameType.JSON, "ok", b"1")
    parser = StreamParser(100)
    parser.receive_data(length_prefixed(good) + length_prefixed(good) + struct.pack(">I", 0))
    assert parser.next_frame() == good
    assert parser.next_frame() == good
    with pytest.raises(ProtocolError):
        parser.next_frame()


def test_after_an_error_the_parser_stays_failed():
    parser = StreamParser(10)
    parser.receive_data(struct.pack(">I", 11))
    with pytest.raises(ProtocolError):
        parser.next_frame()
    with pytest.raises(ProtocolError):
        parser.next_frame()


def test_max_frame_size_must_hold_a_header():
    with pytest.raises(ValueError, match="at least 3"):
        StreamParser(2)
