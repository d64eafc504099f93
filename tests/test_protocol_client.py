"""The sans-I/O client session, byte by byte: the frames it sends for each command and the events
it makes of the frames it receives. No sockets, no event loop (the reference a browser client's
tests are checked against)."""

import pytest

from stelar_core import AckError, ErrorCode
from stelar_core.protocol import FrameType, encode_frame
from stelar_core.protocol.client import (
    ClientSession,
    ClientState,
    DisconnectReceived,
    ErrorReceived,
    EventReceived,
    InvalidFrame,
    PingReceived,
    PongReceived,
    RequestReceived,
    ResponseReceived,
    RoomAnswered,
    Welcome,
)


def welcomed(**options):
    session = ClientSession(**options)
    session.connect({"token": "t"})
    session.receive_frame(
        encode_frame(FrameType.CONNECT, "", b'{"id":"c1","v":1,"heartbeat":30,"max_payload":64}')
    )
    session.events_received()  # the welcome
    return session


def test_the_handshake_bytes_and_the_welcome():
    session = ClientSession()
    assert session.state is ClientState.CONNECTING
    session.connect({"token": "t"})
    assert session.data_to_send() == [b"\x06\x00\x00" + b'{"auth":{"token":"t"}}']
    assert session.data_to_send() == []  # taken once
    session.receive_frame(b'\x06\x00\x00{"id":"c1","v":1,"heartbeat":30,"max_payload":64}')
    assert session.events_received() == [Welcome("c1", 1, 30.0, 64)]
    assert session.state is ClientState.OPEN and session.id == "c1"


def test_commands_become_exact_frames():
    session = welcomed()
    session.data_to_send()
    session.emit("chat", {"t": "hi"})
    session.emit_binary("blob", b"\x00\x01")
    session.join("room")
    session.leave("room")
    session.ping(b"p")
    session.pong(b"q")
    assert session.data_to_send() == [
        b"\x00\x00\x04chat" + b'{"t":"hi"}',
        b"\x01\x00\x04blob\x00\x01",
        b"\x08\x00\x04room",
        b"\x09\x00\x04room",
        b"\x02\x00\x00p",
        b"\x03\x00\x00q",
    ]


def test_requests_carry_ack_ids_and_their_answers_are_matched():
    session = welcomed()
    session.data_to_send()
    first = session.request("add", [1, 2])
    second = session.request("add", [3, 4])
    assert (first, second) == (0, 1)
    assert session.data_to_send() == [
        b"\x04\x00\x03add\x00\x00\x00\x00[1,2]",
        b"\x04\x00\x03add\x00\x00\x00\x01[3,4]",
    ]
    session.receive_frame(encode_frame(FrameType.ACK_RESPONSE, "add", b'{"ok":7}', 1))
    session.receive_frame(
        encode_frame(FrameType.ACK_RESPONSE, "add", b'{"error":{"code":"boom","message":"no"}}', 0)
    )
    late, error = session.events_received()
    assert late == ResponseReceived(1, "add", 7)
    assert error.ack_id == 0 and error.error.code == "boom" and error.error.message == "no"
    assert session.requests_in_flight == 0


def test_an_answer_nobody_waits_for_is_invalid_and_changes_nothing():
    session = welcomed()
    ack_id = session.request("x")
    session.forget_request(ack_id)  # timed out
    session.receive_frame(encode_frame(FrameType.ACK_RESPONSE, "x", b'{"ok":1}', ack_id))
    (event,) = session.events_received()
    assert isinstance(event, InvalidFrame) and event.error.code == ErrorCode.UNKNOWN_ACK


def test_ack_ids_wrap_and_skip_those_in_flight_and_are_bounded():
    session = welcomed(max_in_flight=2)
    session._in_flight._next = 0xFFFFFFFF  # as after 2**32 - 1 requests
    assert session.request("a") == 0xFFFFFFFF
    assert session.request("b") == 0
    with pytest.raises(AckError) as info:
        session.request("c")
    assert info.value.code == ErrorCode.TOO_MANY_PENDING_ACKS
    session.receive_frame(encode_frame(FrameType.ACK_RESPONSE, "a", b'{"ok":null}', 0xFFFFFFFF))
    session.events_received()
    assert session.request("c") == 1  # 0 is still in flight


def test_the_server_asks_and_is_answered():
    session = welcomed()
    session.data_to_send()
    session.receive_frame(encode_frame(FrameType.ACK_REQUEST, "whoami", b'"x"', 9))
    (request,) = session.events_received()
    assert request == RequestReceived("whoami", "x", 9)
    session.answer(request, {"me": "x"})
    session.answer_error(request, ErrorCode.NO_HANDLER, "whoami")
    session.answer(request, object())  # not JSON: an error answer, never an exception
    sent = session.data_to_send()
    assert sent[0] == b"\x05\x00\x06whoami\x00\x00\x00\x09" + b'{"ok":{"me":"x"}}'
    assert (
        sent[1]
        == b"\x05\x00\x06whoami\x00\x00\x00\x09" + b'{"error":{"code":"no_handler","message":"whoami"}}'
    )
    assert sent[2].startswith(b"\x05\x00\x06whoami\x00\x00\x00\x09" + b'{"error":{"code":"handler_error"')


def test_events_rooms_errors_pings_and_the_goodbye():
    session = welcomed()
    session.data_to_send()
    for frame in (
        encode_frame(FrameType.JSON, "news", b'{"n":1}'),
        encode_frame(FrameType.BINARY, "blob", b"\xff"),
        encode_frame(FrameType.JOIN, "r", b'{"ok":true}'),
        encode_frame(FrameType.JOIN, "full", b'{"error":{"code":"max_rooms","message":"at most 1"}}'),
        encode_frame(FrameType.PING, "", b"hb"),
        encode_frame(FrameType.PONG, "", b"mine"),
        encode_frame(FrameType.ERROR, "rate_limited", b'{"message":"slow down","event":"chat"}'),
        encode_frame(FrameType.DISCONNECT, "", b'{"code":1001,"reason":"bye"}'),
    ):
        session.receive_frame(frame)
    events = session.events_received()
    assert events[:2] == [EventReceived("news", {"n": 1}), EventReceived("blob", b"\xff", binary=True)]
    assert events[2] == RoomAnswered(FrameType.JOIN, "r") and events[2].ok
    assert events[3].room == "full" and events[3].error.code == "max_rooms"
    assert events[4:6] == [PingReceived(b"hb"), PongReceived(b"mine")]
    assert events[6] == ErrorReceived("rate_limited", "slow down", {"message": "slow down", "event": "chat"})
    assert events[7] == DisconnectReceived(1001, "bye")
    assert session.data_to_send() == [b"\x03\x00\x00hb"]  # the ping was answered
    assert session.state is ClientState.CLOSED


def test_without_auto_pong_a_ping_is_only_reported():
    session = welcomed(auto_pong=False)
    session.data_to_send()
    session.receive_frame(encode_frame(FrameType.PING, "", b"hb"))
    assert session.events_received() == [PingReceived(b"hb")]
    assert session.data_to_send() == []


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00", ErrorCode.INVALID_FRAME),  # shorter than a header
        (b"\x63\x00\x00", ErrorCode.INVALID_FRAME),  # unknown type
        (b"\x00\x00\x01\xff{}", ErrorCode.INVALID_EVENT),  # event name not UTF-8
        (b"\x00\x00\x01e{broken", ErrorCode.INVALID_JSON),
        (b"\x06\x00\x00[]", ErrorCode.INVALID_FRAME),  # a second welcome
    ],
)
def test_bad_frames_become_invalid_frame_events(frame, code):
    session = welcomed()
    session.events_received()
    session.receive_frame(frame)
    (event,) = session.events_received()
    assert isinstance(event, InvalidFrame) and event.error.code == code
    assert session.state is ClientState.OPEN  # nothing else changed


def test_a_welcome_without_an_id_is_invalid():
    session = ClientSession()
    session.receive_frame(encode_frame(FrameType.CONNECT, "", b'{"v":1}'))
    (event,) = session.events_received()
    assert isinstance(event, InvalidFrame) and session.state is ClientState.CONNECTING


def test_disconnect_sends_the_goodbye_and_reports_the_requests_lost():
    session = welcomed()
    session.data_to_send()
    sent = session.request("x")
    session.open_request()  # taken while offline, not sent
    assert session.disconnect(1000, "done") == [sent]
    assert session.data_to_send()[-1] == b"\x07\x00\x00" + b'{"code":1000,"reason":"done"}'
    assert session.state is ClientState.CLOSED and session.requests_in_flight == 1


def test_a_session_serves_the_next_connection_and_keeps_queued_requests():
    session = welcomed()
    queued = session.open_request()
    assert session.connection_lost() == []
    session.connect()
    assert session.state is ClientState.CONNECTING
    session.receive_frame(encode_frame(FrameType.CONNECT, "", b'{"id":"c2"}'))
    session.send_request(queued, "late", b"null")
    session.receive_frame(encode_frame(FrameType.ACK_RESPONSE, "late", b'{"ok":1}', queued))
    events = session.events_received()
    assert events[0].id == "c2" and events[1] == ResponseReceived(queued, "late", 1)
