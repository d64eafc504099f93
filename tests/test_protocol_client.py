"""The sans-I/O client session, byte by byte: the frames it sends for each command and the events
it makes of the frames it receives. No sockets, no event loop.

The exchanges are data (``tests/fixtures/client_exchanges.json``): stelar.js's session plays
the same scripts in ``tests/js/session.test.mjs``, so the two clients agree frame for frame."""

import json
from pathlib import Path
from typing import Any

import pytest

from stelar_core import AckError
from stelar_core.protocol import FrameType, encode_frame
from stelar_core.protocol.client import (
    ClientEvent,
    ClientSession,
    DisconnectReceived,
    ErrorReceived,
    EventReceived,
    InvalidFrame,
    MessagesDropped,
    PingReceived,
    PongReceived,
    PresenceChanged,
    RequestReceived,
    ResponseReceived,
    RoomAnswered,
    Welcome,
)
from stelar_core.protocol.publications import Position

EXCHANGES = json.loads((Path(__file__).parent / "fixtures" / "client_exchanges.json").read_text())
WELCOME = encode_frame(FrameType.CONNECT, "", b'{"id":"c1","v":1,"heartbeat":30,"max_payload":64}')


def frame_bytes(spec: dict[str, Any]) -> bytes:
    if "raw_hex" in spec:
        return bytes.fromhex(spec["raw_hex"])
    payload = bytes.fromhex(spec["payload_hex"]) if "payload_hex" in spec else spec["payload"].encode()
    return encode_frame(FrameType(spec["type"]), spec["event"], payload, spec.get("ack_id"))


def argument(value: Any) -> Any:
    """``{"hex": ...}`` stands for bytes, ``{"epoch", "offset"}`` for a position; anything else
    is JSON as is."""
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    if isinstance(value, dict) and set(value) == {"epoch", "offset"}:
        return Position(**value)
    return value


def published(event: EventReceived, shape: dict[str, Any]) -> dict[str, Any]:
    if event.room is not None and event.position is not None:
        return {**shape, "room": event.room, "position": event.position.to_json()}
    return shape


def room_details(event: RoomAnswered) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if event.position is not None:
        details["position"] = event.position.to_json()
    if event.recovered is not None:
        details["recovered"] = event.recovered
        details.update({"replayed": event.replayed} if event.recovered else {"reason": event.reason})
    return details


def normalized(event: ClientEvent) -> dict[str, Any]:
    """An event in the fixture's shape."""

    def error(value: AckError | None) -> dict[str, str] | None:
        return None if value is None else {"code": value.code, "message": value.message}

    match event:
        case Welcome():
            shape = {"id": event.id, "v": event.version, "heartbeat": event.heartbeat}
            welcome = {"type": "welcome", **shape, "max_payload": event.max_payload}
            if event.resumed:
                welcome.update(resumed=True, rooms=list(event.rooms))
            if event.lost:
                welcome["lost"] = list(event.lost)
            return welcome
        case EventReceived(binary=True):
            return published(event, {"type": "event", "event": event.event, "data_hex": event.data.hex()})
        case EventReceived():
            return published(event, {"type": "event", "event": event.event, "data": event.data})
        case RequestReceived():
            return {"type": "request", "event": event.event, "data": event.data, "ack_id": event.ack_id}
        case ResponseReceived(error=None):
            return {"type": "response", "ack_id": event.ack_id, "event": event.event, "value": event.value}
        case ResponseReceived():
            return {
                "type": "response",
                "ack_id": event.ack_id,
                "event": event.event,
                "error": error(event.error),
            }
        case RoomAnswered():
            kind = "join" if event.kind is FrameType.JOIN else "leave"
            shape = {"type": "room", "kind": kind, "room": event.room, "error": error(event.error)}
            return {**shape, **room_details(event)}
        case PingReceived() | PongReceived():
            kind = "ping" if isinstance(event, PingReceived) else "pong"
            return {"type": kind, "payload_hex": event.payload.hex()}
        case ErrorReceived():
            return {"type": "error", "code": event.code, "message": event.message, "body": event.body}
        case DisconnectReceived():
            return {"type": "disconnect", "code": event.code, "reason": event.reason}
        case PresenceChanged():
            shape = {"type": "presence", "room": event.room, "count": event.count, "joins": event.joins}
            return {
                **shape,
                "leaves": list(event.leaves),
                "updates": event.updates,
                "snapshot": event.snapshot,
            }
        case MessagesDropped():
            return {"type": "dropped", "room": event.room, "count": event.count, "policy": event.policy}
        case InvalidFrame():
            return {"type": "invalid", "code": event.error.code}
    raise AssertionError(f"an event the fixture has no shape for: {event!r}")


def command(session: ClientSession, name: str, args: list[Any]) -> Any:
    if name == "answer":
        event, ack_id, value = args
        return session.answer(RequestReceived(event, None, ack_id), value)
    if name == "answer_error":
        event, ack_id, code, message = args
        return session.answer_error(RequestReceived(event, None, ack_id), code, message)
    if name == "send_request":
        ack_id, event, payload = args
        return session.send_request(ack_id, event, payload.encode())
    return getattr(session, name)(*map(argument, args))


@pytest.mark.parametrize("script", EXCHANGES["scripts"], ids=lambda script: script["name"])
def test_the_session_plays_each_shared_exchange(script):
    session = ClientSession(**script.get("options", {}))
    if script.get("welcomed"):
        session.connect({"token": "t"})
        session.receive_frame(WELCOME)
        session.data_to_send(), session.events_received()
    for number, step in enumerate(script["steps"]):
        where = f"step {number}: {step}"
        if "do" in step:
            if "raises" in step:
                with pytest.raises(AckError) as info:
                    command(session, step["do"], step["args"])
                assert info.value.code == step["raises"], where
                continue
            result = command(session, step["do"], step["args"])
            if "returns" in step:
                assert result == step["returns"], where
        elif "receive" in step:
            session.receive_frame(frame_bytes(step["receive"]))
        elif "sent" in step:
            assert session.data_to_send() == [frame_bytes(f) for f in step["sent"]], where
        elif "events" in step:
            assert [normalized(e) for e in session.events_received()] == step["events"], where
        elif "state" in step:
            assert session.state.value == step["state"], where
        elif "in_flight" in step:
            assert session.requests_in_flight == step["in_flight"], where
        elif "positions" in step:
            positions = {room: position.to_json() for room, position in session.positions.items()}
            assert positions == step["positions"], where
        elif "duplicates" in step:
            assert session.duplicates == step["duplicates"], where
        elif "lost" in step:
            assert session.lost == step["lost"], where
        elif "presence" in step:
            assert session.presence == step["presence"], where
        else:
            raise AssertionError(f"unknown step {step}")


def test_every_event_type_and_command_is_exercised_by_the_shared_exchanges():
    steps = [step for script in EXCHANGES["scripts"] for step in script["steps"]]
    events = {event["type"] for step in steps for event in step.get("events", [])}
    assert events == {
        "welcome", "event", "request", "response", "room", "dropped", "presence", "ping", "pong", "error",
        "disconnect", "invalid"
    }  # fmt: skip
    commands = {step["do"] for step in steps if "do" in step}
    public = {
        name
        for name in vars(ClientSession)
        if not name.startswith("_") and callable(vars(ClientSession)[name])
    }
    assert public - {"data_to_send", "events_received", "receive_frame", "emit_payload"} == commands


def test_ack_ids_wrap_at_two_to_the_32_and_skip_those_in_flight():
    session = ClientSession(max_in_flight=2)
    session._in_flight._next = 0xFFFFFFFF  # as after 2**32 - 1 requests
    assert session.request("a") == 0xFFFFFFFF
    assert session.request("b") == 0
    session.receive_frame(encode_frame(FrameType.ACK_RESPONSE, "a", b'{"ok":null}', 0xFFFFFFFF))
    session.events_received()
    assert session.request("c") == 1  # 0 is still in flight


def test_an_answer_that_is_not_json_becomes_an_error_answer_never_an_exception():
    session = ClientSession()
    session.answer(RequestReceived("whoami", None, 9), object())
    (sent,) = session.data_to_send()
    assert sent.startswith(b"\x05\x00\x06whoami\x00\x00\x00\x09" + b'{"error":{"code":"handler_error"')


def test_the_exact_bytes_of_the_handshake_and_a_request():
    # The fixture's frames are encoded by each side's codec (held to tests/fixtures/
    # frame_vectors.json); these two are written out byte by byte as well.
    session = ClientSession()
    session.connect({"token": "t"})
    session.request("add", [1, 2])
    assert session.data_to_send() == [
        b"\x06\x00\x00" + b'{"auth":{"token":"t"}}',
        b"\x04\x00\x03add\x00\x00\x00\x00[1,2]",
    ]
