"""Malformed frames: the sender is told, counters and hooks record it, everyone else carries on."""

import pytest

from stelar_core import AckError, ErrorCode
from stelar_core.protocol import FrameType, dump_json


@pytest.fixture
async def watched(stelar_server_factory, stelar_client_factory):
    """A server recording invalid-message and payload hooks, an offender and a bystander."""
    invalid, too_large = [], []
    server = await stelar_server_factory(
        max_payload_size=64,
        max_event_name_length=16,
        hooks={
            "on_invalid_message": lambda client_id, code, reason: invalid.append((client_id, code)),
            "on_payload_too_large": lambda client_id, event, size, max_size: too_large.append(
                (event, size, max_size)
            ),
        },
    )
    server.on("echo", lambda ctx: ctx.emit("echo", ctx.data))
    server.on_ack("echo", lambda ctx: ctx.data)
    offender = await stelar_client_factory(server)
    bystander = await stelar_client_factory(server)
    return server, offender, bystander, invalid, too_large


async def assert_both_still_served(offender, bystander):
    for client in (offender, bystander):
        client.emit("echo", "alive")
        assert (await client.next_event()).data == "alive"


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        (b"\x0e\x00\x00", ErrorCode.INVALID_FRAME, "unknown frame type 14"),
        (b"\x00", ErrorCode.INVALID_FRAME, "shorter than the 3-byte header"),
        (b"\x00\x00\x09echo", ErrorCode.INVALID_FRAME, "event length 9 runs past"),
        (b"\x00\x00\x02\xff\xfe{}", ErrorCode.INVALID_EVENT, "not valid UTF-8"),
        (b"\x00\x00\x04echo{oops", ErrorCode.INVALID_JSON, "not valid JSON"),
        (b"\x00\x00\x00{}", ErrorCode.INVALID_EVENT, "event name is empty"),
        (b"\x00\x00\x11" + b"e" * 17 + b"{}", ErrorCode.INVALID_EVENT, "at most 16"),
        (b"\x06\x00\x00{}", ErrorCode.INVALID_FRAME, "already connected"),
    ],
)
async def test_malformed_frames_get_an_error_frame_and_the_connection_lives(watched, raw, code, reason):
    server, offender, bystander, invalid, _ = watched
    offender.send_raw(raw)
    got_code, body = await offender.next_error()
    assert got_code == code and reason in body["message"]
    assert invalid == [(offender.id, code)]
    assert server.get_stats().invalid_messages == 1
    await assert_both_still_served(offender, bystander)


async def test_an_oversized_payload_is_dropped_and_reported(watched):
    server, offender, bystander, _, too_large = watched
    offender.emit("echo", "x" * 100)
    code, body = await offender.next_error()
    assert code == ErrorCode.PAYLOAD_TOO_LARGE and body == {
        "message": "payload is 102 bytes, at most 64",
        "event": "echo",
    }
    with pytest.raises(AckError) as info:
        await offender.request("echo", "y" * 100)
    assert info.value.code == ErrorCode.PAYLOAD_TOO_LARGE
    offender.emit_binary("echo", b"z" * 65)
    assert (await offender.next_error())[0] == ErrorCode.PAYLOAD_TOO_LARGE
    assert too_large == [("echo", 102, 64), ("echo", 102, 64), ("echo", 65, 64)]
    assert server.get_stats().payload_too_large == 3
    await assert_both_still_served(offender, bystander)


async def test_a_payload_exactly_at_the_limit_passes(watched):
    _, offender, _, _, too_large = watched
    offender.emit("echo", "x" * 62)  # 64 bytes of JSON with the quotes
    assert (await offender.next_event()).data == "x" * 62
    assert too_large == []


async def test_an_error_frame_from_a_client_is_answered_as_a_frame_it_must_not_send(watched, caplog):
    caplog.set_level("INFO", logger="stelar")
    _, offender, bystander, invalid, _ = watched
    offender.send_frame(FrameType.ERROR, "client_problem", dump_json({"message": "oops"}))
    code, body = await offender.next_error()
    assert code == ErrorCode.INVALID_FRAME and "type 10" in body["message"]
    await assert_both_still_served(offender, bystander)
    assert invalid == [(offender.id, ErrorCode.INVALID_FRAME)]
    assert "client_problem" in caplog.text


async def test_a_disconnect_frame_from_the_client_closes_it_cleanly(watched):
    server, offender, bystander, _, _ = watched
    offender.send_frame(FrameType.DISCONNECT, payload=dump_json({"code": 1000, "reason": "bye"}))
    assert (await offender.wait_closed())[0] == 1000
    assert [c.id for c in server.get_clients()] == [bystander.id]
