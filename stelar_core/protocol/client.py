"""The client side of wire protocol v1, sans-I/O: frames in -> events out, commands -> frames.

:class:`ClientSession` keeps what the protocol itself needs (whether the handshake is done, the
ack ids of the requests in flight, answering pings) and nothing of asyncio: the glue feeds it
whole frames (``receive_frame``), reads ``events_received()`` and sends what
``data_to_send()`` returns (encoded frames, without a transport's envelope). ``StelarClient``
and the test kit's ``TestClient`` are such glue; a browser client must behave the same way, frame
for frame (``tests/test_protocol_client.py`` asserts the exact bytes).
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Any, TypeAlias

import attrs

from stelar_core.errors import AckError, ProtocolError
from stelar_core.protocol.acks import AckIds, error_answer, ok_answer, read_answer
from stelar_core.protocol.codes import ErrorCode
from stelar_core.protocol.frames import Frame, FrameType, decode_frame, dump_json, encode_frame
from stelar_core.protocol.publications import Position, decode_publication, read_since

DEFAULT_MAX_IN_FLIGHT = 1024
DEFAULT_MAX_UNCONFIRMED = 1024


class ClientState(enum.Enum):
    CONNECTING = "connecting"  # connect sent, no welcome yet
    OPEN = "open"
    CLOSED = "closed"  # the server said disconnect, or the glue said the connection is gone


# --------------------------------------------------------------------------- events


@attrs.frozen(slots=True)
class Welcome:
    """The server accepted the handshake. ``body`` is the welcome as sent (a newer server may
    add fields). ``resumed``: the session of the previous connection goes on (same ID; back in
    ``rooms``, and what the server had not received was sent again); otherwise ``lost`` are the
    ack ids of requests sent before that will get no answer."""

    id: str
    version: int | None
    heartbeat: float | None
    max_payload: int | None
    body: dict[str, Any] = attrs.field(factory=dict, eq=False)
    resumed: bool = False
    rooms: tuple[str, ...] = ()
    lost: tuple[int, ...] = ()


@attrs.frozen(slots=True)
class EventReceived:
    event: str
    data: Any  # decoded JSON, or bytes for a binary event
    binary: bool = False
    # For a publication (a room with history): the room and the message's position in it.
    room: str | None = None
    position: Position | None = None


@attrs.frozen(slots=True)
class RequestReceived:
    """The server asks; answer with :meth:`ClientSession.answer` or ``answer_error``."""

    event: str
    data: Any
    ack_id: int


@attrs.frozen(slots=True)
class ResponseReceived:
    """The answer to one of our requests: ``value`` when ``error`` is None."""

    ack_id: int
    event: str
    value: Any = None
    error: AckError | None = None


@attrs.frozen(slots=True)
class RoomAnswered:
    """The answer to a join or leave: ``error`` is None when accepted. For a room with history,
    ``position`` is where it stands; for a join that asked to recover, ``recovered`` says whether
    every missed publication was replayed (``replayed`` of them, before this answer) or, with
    ``reason``, why nothing was."""

    kind: FrameType  # JOIN or LEAVE
    room: str
    error: AckError | None = None
    position: Position | None = None
    recovered: bool | None = None
    reason: str | None = None
    replayed: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen(slots=True)
class MessagesDropped:
    """A room's lossy send queue dropped ``count`` messages meant for this client (``policy``:
    ``drop_oldest`` or ``conflate``, where only the latest value of each key was kept)."""

    room: str
    count: int
    policy: str


@attrs.frozen(slots=True)
class PresenceChanged:
    """Who is in a presence room changed (or, ``snapshot``, is now known whole): keys that came
    with their state, keys that left, keys whose state changed, and the member count. In a room
    past its list limit only ``count`` is told."""

    room: str
    count: int
    joins: dict[str, Any] = attrs.field(factory=dict)
    leaves: tuple[str, ...] = ()
    updates: dict[str, Any] = attrs.field(factory=dict)
    snapshot: bool = False


@attrs.frozen(slots=True)
class PingReceived:
    """The server's heartbeat; answered already when ``auto_pong``."""

    payload: bytes


@attrs.frozen(slots=True)
class PongReceived:
    payload: bytes


@attrs.frozen(slots=True)
class ErrorReceived:
    code: str
    message: str
    body: Any


@attrs.frozen(slots=True)
class DisconnectReceived:
    code: int
    reason: str


@attrs.frozen(slots=True)
class InvalidFrame:
    """A frame from the server that breaks the protocol (it is otherwise ignored)."""

    error: ProtocolError


ClientEvent: TypeAlias = (
    Welcome
    | EventReceived
    | RequestReceived
    | ResponseReceived
    | RoomAnswered
    | MessagesDropped
    | PresenceChanged
    | PingReceived
    | PongReceived
    | ErrorReceived
    | DisconnectReceived
    | InvalidFrame
)


class ClientSession:
    """One connection's protocol state, from the client's side.

    ``auto_pong``: answer the server's pings at once (the test kit turns it off to play a silent
    peer). ``max_in_flight``: requests awaiting an answer at most; past it ``request`` raises
    ``AckError(too_many_pending_acks)``.
    """

    def __init__(
        self,
        *,
        auto_pong: bool = True,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_unconfirmed: int = DEFAULT_MAX_UNCONFIRMED,
    ) -> None:
        self.auto_pong = auto_pong
        self.state = ClientState.CONNECTING
        self.id: str | None = None
        # The welcome said the server reads trace context ("trace": true).
        self.server_traces = False
        self._in_flight = AckIds(max_in_flight)  # taken and not yet answered or forgotten
        self._sent: set[int] = set()  # those of them sent on the current connection
        self._events: list[ClientEvent] = []
        self._out: list[bytes] = []
        # The last position seen in each room with history: kept across connections, so that a
        # rejoin asks for exactly what was missed.
        self.positions: dict[str, Position] = {}
        self.duplicates = 0  # publications received twice (at or before a position seen) and dropped
        self.lost: dict[str, int] = {}  # messages lossy send queues dropped, by room
        # Presence rooms: the members by key with their state, the count, the last diff number.
        self.presence: dict[str, dict[str, Any]] = {}
        self.presence_counts: dict[str, int] = {}
        self._presence_seq: dict[str, int] = {}
        # Resumption: the secret the server gave for this session, the events and requests sent
        # in it (numbered 1, 2, ...), and the last ones of them, which a resumed session sends
        # again when the server says it had not received them.
        self.resume_token: str | None = None
        self.sent_count = 0
        self._unconfirmed: deque[tuple[int, bytes]] = deque(maxlen=max_unconfirmed)

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> list[bytes]:
        """The frames to send, in order, since the last call."""
        out, self._out = self._out, []
        return out

    def _send(
        self, kind: FrameType, event: str = "", payload: bytes = b"", ack_id: int | None = None
    ) -> None:
        self._out.append(encode_frame(kind, event, payload, ack_id))

    def _send_message(
        self, kind: FrameType, event: str, payload: bytes, ack_id: int | None = None, trace: str | None = None
    ) -> None:
        """An event or request: numbered and kept, so that a resumed session can send again
        what the server did not receive. Its trace context goes only to a server that said in
        its welcome that it traces (an older server would not read it)."""
        frame = encode_frame(kind, event, payload, ack_id, trace if self.server_traces else None)
        self._out.append(frame)
        self.sent_count += 1
        self._unconfirmed.append((self.sent_count, frame))

    def connect(self, auth: dict[str, Any] | None = None) -> None:
        """The handshake's first frame: ``connect`` with ``{"auth": ...}``, and the session to
        resume when the server offered one. A session can serve one connection after another (a
        reconnecting client): each starts here."""
        self.state = ClientState.CONNECTING
        body: dict[str, Any] = {"auth": auth or {}}
        if self.resume_token is not None and self.id is not None:
            body["resume"] = {"id": self.id, "token": self.resume_token, "waiting": sorted(self._sent)}
        self._send(FrameType.CONNECT, payload=dump_json(body))

    def emit(self, event: str, data: Any = None, *, trace: str | None = None) -> None:
        """Send an event; ``trace``: a W3C traceparent to attach (see :meth:`_send_message`)."""
        self._send_message(FrameType.JSON, event, dump_json(data), trace=trace)

    def emit_binary(self, event: str, data: bytes, *, trace: str | None = None) -> None:
        self._send_message(FrameType.BINARY, event, bytes(data), trace=trace)

    def emit_payload(self, kind: FrameType, event: str, payload: bytes, *, trace: str | None = None) -> None:
        """An already encoded payload (the client's offline queue keeps payloads as bytes)."""
        self._send_message(kind, event, payload, trace=trace)

    def request(
        self, event: str, data: Any = None, *, payload: bytes | None = None, trace: str | None = None
    ) -> int:
        """Ask the server; returns the ack id its :class:`ResponseReceived` will carry. Ids count
        up and wrap at 2**32, skipping those still in flight."""
        ack_id = self.open_request()
        self.send_request(ack_id, event, dump_json(data) if payload is None else payload, trace=trace)
        return ack_id

    def open_request(self) -> int:
        """Take an ack id without sending (a request queued while offline keeps its id until
        ``send_request``)."""
        return self._in_flight.take()

    def send_request(self, ack_id: int, event: str, payload: bytes, *, trace: str | None = None) -> None:
        self._send_message(FrameType.ACK_REQUEST, event, payload, ack_id, trace)
        self._sent.add(ack_id)

    def forget_request(self, ack_id: int) -> None:
        """The glue gave up on a request (timeout, lost connection): a late answer is invalid."""
        self._in_flight.release(ack_id)
        self._sent.discard(ack_id)

    @property
    def requests_in_flight(self) -> int:
        return len(self._in_flight)

    def answer(self, request: RequestReceived, value: Any) -> None:
        """Answer the server's request with ``{"ok": value}`` (an error answer when the value
        cannot be carried as JSON)."""
        try:
            payload = ok_answer(value)
        except TypeError as exc:
            self.answer_error(request, ErrorCode.HANDLER_ERROR, f"answer is not JSON-serializable: {exc}")
            return
        self._send(FrameType.ACK_RESPONSE, request.event, payload, request.ack_id)

    def answer_error(self, request: RequestReceived, code: str, message: str) -> None:
        payload = error_answer(code, message)
        self._send(FrameType.ACK_RESPONSE, request.event, payload, request.ack_id)

    def join(self, room: str, since: Position | None = None) -> None:
        """Join ``room``; with ``since``, ask for the publications after that position."""
        payload = b"" if since is None else dump_json({"since": since.to_json()})
        self._send(FrameType.JOIN, room, payload)

    def update_presence(self, room: str, state: Any) -> None:
        """Set this client's state in presence room ``room``."""
        self._send(FrameType.PRESENCE, room, dump_json({"state": state}))

    def ask_presence(self, room: str) -> None:
        """Ask for presence room ``room``'s members again (done by itself on a missed diff)."""
        self._send(FrameType.PRESENCE, room, dump_json({"snapshot": True}))

    def rejoin(self, room: str) -> None:
        """Join again after a reconnection, from the last position seen when there is one."""
        self.join(room, self.positions.get(room))

    def leave(self, room: str) -> None:
        self._send(FrameType.LEAVE, room)

    def ping(self, payload: bytes = b"") -> None:
        self._send(FrameType.PING, payload=payload)

    def pong(self, payload: bytes = b"") -> None:
        self._send(FrameType.PONG, payload=payload)

    def disconnect(self, code: int, reason: str = "") -> list[int]:
        """Say goodbye (the session ends: nothing is resumed); returns the ack ids of the
        requests that will get no answer."""
        self._send(FrameType.DISCONNECT, payload=dump_json({"code": code, "reason": reason}))
        self.resume_token = None
        return self.connection_lost()

    def connection_lost(self) -> list[int]:
        """The connection is gone. Returns the ack ids of the requests sent on it that will get
        no answer: all of them, unless the session can be resumed (then the next welcome says);
        requests taken but not sent yet (queued offline) keep theirs."""
        self.state = ClientState.CLOSED
        if self.resume_token is not None:
            return []
        return self._forget_sent()

    def _forget_sent(self) -> list[int]:
        lost = sorted(self._sent)
        self._in_flight.release_all(lost)
        self._sent.clear()
        self._unconfirmed.clear()
        self.sent_count = 0
        return lost

    # ------------------------------------------------------------------ input

    def events_received(self) -> list[ClientEvent]:
        """What the frames received since the last call meant, in order."""
        events, self._events = self._events, []
        return events

    def receive_frame(self, data: bytes) -> None:
        """One whole frame from the server (the transport's envelope removed)."""
        try:
            frame = decode_frame(data)
            event = (
                self._publication(frame) if frame.type is FrameType.PUBLICATION else self._interpret(frame)
            )
        except ProtocolError as exc:
            self._events.append(InvalidFrame(exc))
            return
        if event is not None:
            self._events.append(event)

    def _interpret(self, frame: Frame) -> ClientEvent | None:
        kind = frame.type
        if kind is FrameType.PUBLICATION:
            return self._publication(frame)
        if kind is FrameType.DROPPED:
            return self._dropped(frame)
        if kind is FrameType.PRESENCE:
            return self._presence(frame)
        if kind is FrameType.JSON:
            return EventReceived(frame.event, frame.json())
        if kind is FrameType.BINARY:
            return EventReceived(frame.event, frame.payload, binary=True)
        if kind is FrameType.ACK_RESPONSE:
            return self._response(frame)
        if kind is FrameType.ACK_REQUEST:
            assert frame.ack_id is not None  # decode_frame guarantees it for this type
            return RequestReceived(frame.event, frame.json(), frame.ack_id)
        if kind is FrameType.JOIN or kind is FrameType.LEAVE:
            return self._room_answer(frame)
        if kind is FrameType.PING:
            if self.auto_pong:
                self.pong(frame.payload)
            return PingReceived(frame.payload)
        if kind is FrameType.PONG:
            return PongReceived(frame.payload)
        if kind is FrameType.CONNECT:
            return self._welcome(frame)
        if kind is FrameType.ERROR:
            body = frame.json()
            message = body.get("message", "") if isinstance(body, dict) else ""
            return ErrorReceived(frame.event, str(message), body)
        return self._disconnect(frame)

    def _publication(self, frame: Frame) -> EventReceived | None:
        """A room's publication, or None when it was seen already (a replay overlapping what
        arrived live): positions only move forward within an epoch."""
        publication = decode_publication(frame)
        position = publication.position
        if not _advances(self.positions.get(publication.room), position):
            self.duplicates += 1
            return None
        self.positions[publication.room] = position
        inner = publication.frame
        binary = inner.type is FrameType.BINARY
        data = inner.payload if binary else inner.json()
        return EventReceived(inner.event, data, binary, publication.room, position)

    def _presence(self, frame: Frame) -> PresenceChanged | None:
        """Apply a snapshot, or the next diff; a diff after a gap is not applied: a snapshot is
        asked for instead (and no event is made until it comes)."""
        body = frame.json()
        room = frame.event
        if (
            not isinstance(body, dict)
            or type(body.get("seq")) is not int
            or type(body.get("count")) is not int
        ):
            raise ProtocolError(ErrorCode.INVALID_FRAME, 'a presence frame is {"seq": n, "count": n, ...}')
        seq, count = body["seq"], body["count"]
        members = self.presence.setdefault(room, {})
        if body.get("snapshot") is True:
            listed = body.get("members", {})
            members.clear()
            members.update(listed if isinstance(listed, dict) else {})
            self._presence_seq[room], self.presence_counts[room] = seq, count
            return PresenceChanged(room, count, dict(members), snapshot=True)
        if self._presence_seq.get(room) != seq - 1:
            self.ask_presence(room)
            return None
        joins, leaves, updates = body.get("joins", {}), body.get("leaves", []), body.get("updates", {})
        members.update(joins)
        members.update(updates)
        for key in leaves:
            members.pop(key, None)
        self._presence_seq[room], self.presence_counts[room] = seq, count
        return PresenceChanged(room, count, dict(joins), tuple(leaves), dict(updates))

    def _dropped(self, frame: Frame) -> MessagesDropped:
        body = frame.json()
        count = body.get("count") if isinstance(body, dict) else None
        if type(count) is not int or count < 1:
            raise ProtocolError(
                ErrorCode.INVALID_FRAME, 'a dropped notice is {"count": n >= 1, "policy": ...}'
            )
        policy = body.get("policy")
        self.lost[frame.event] = self.lost.get(frame.event, 0) + count
        return MessagesDropped(frame.event, count, policy if isinstance(policy, str) else "")

    def _room_answer(self, frame: Frame) -> RoomAnswered:
        body = frame.json()
        error = read_answer(body)[1]
        room = frame.event
        if frame.type is FrameType.LEAVE:
            if error is None:
                self.positions.pop(room, None)
                self.presence.pop(room, None)
                self.presence_counts.pop(room, None)
                self._presence_seq.pop(room, None)
            return RoomAnswered(frame.type, room, error)
        details = body if error is None and isinstance(body, dict) else {}
        position = _position(details.get("position"))
        seen = self.positions.get(room)
        if position is not None and (
            seen is None or seen.epoch != position.epoch or seen.offset < position.offset
        ):
            self.positions[room] = position
        recovered = details.get("recovered")
        reason = details.get("reason")
        replayed = details.get("replayed")
        return RoomAnswered(
            frame.type,
            room,
            error,
            position,
            recovered if isinstance(recovered, bool) else None,
            reason if isinstance(reason, str) else None,
            replayed if isinstance(replayed, int) and not isinstance(replayed, bool) else 0,
        )

    def _response(self, frame: Frame) -> ClientEvent:
        assert frame.ack_id is not None
        if frame.ack_id not in self._in_flight:
            raise ProtocolError(ErrorCode.UNKNOWN_ACK, f"no request is waiting for ack id {frame.ack_id}")
        self._in_flight.release(frame.ack_id)
        self._sent.discard(frame.ack_id)
        value, error = read_answer(frame.json())
        return ResponseReceived(frame.ack_id, frame.event, value, error)

    def _welcome(self, frame: Frame) -> ClientEvent:
        if self.state is not ClientState.CONNECTING:
            raise ProtocolError(ErrorCode.INVALID_FRAME, "a second welcome")
        body = frame.json()
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise ProtocolError(ErrorCode.INVALID_FRAME, 'the welcome must be {"id": ..., ...}')
        self.state = ClientState.OPEN
        resumed = body.get("resumed") is True and body["id"] == self.id
        received = body.get("received")
        lost: list[int] = []
        rooms: tuple[str, ...] = ()
        if resumed and isinstance(received, int):
            rooms = tuple(room for room in body.get("rooms", ()) if isinstance(room, str))
            # What the server had not received goes again, in order, before anything new.
            for number, unconfirmed in self._unconfirmed:
                if number > received:
                    self._out.append(unconfirmed)
        else:
            resumed = False
            lost = self._forget_sent()
        self.id = body["id"]
        self.server_traces = body.get("trace") is True
        resume = body.get("resume")
        token = resume.get("token") if isinstance(resume, dict) else None
        self.resume_token = token if isinstance(token, str) else None
        heartbeat = body.get("heartbeat")
        max_payload = body.get("max_payload")
        return Welcome(
            body["id"],
            body.get("v") if isinstance(body.get("v"), int) else None,
            float(heartbeat) if isinstance(heartbeat, int | float) and heartbeat > 0 else None,
            max_payload if isinstance(max_payload, int) else None,
            body,
            resumed,
            rooms,
            tuple(lost),
        )

    def _disconnect(self, frame: Frame) -> ClientEvent:
        body = frame.json()
        code = body.get("code") if isinstance(body, dict) else None
        reason = body.get("reason", "") if isinstance(body, dict) else ""
        self.state = ClientState.CLOSED  # requests in flight are lost when the connection ends
        return DisconnectReceived(code if isinstance(code, int) else 1006, str(reason))


def _position(value: Any) -> Position | None:
    """The ``position`` of a join answer, or None when absent or malformed."""
    if value is None:
        return None
    try:
        return read_since({"since": value})
    except ProtocolError:
        return None


def _advances(seen: Position | None, position: Position) -> bool:
    """Whether ``position`` is past ``seen``: a later offset, or another epoch (a new stream)."""
    return seen is None or seen.epoch != position.epoch or position.offset > seen.offset
