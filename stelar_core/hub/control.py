"""The frames that are not messages: ping and pong, a client's goodbye, joining and leaving
rooms (rate-limited like messages), and the frames a client must not send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from stelar_core.errors import ProtocolError
from stelar_core.hub.gate import FrameHandler, MessageGate
from stelar_core.hub.presence import Presence
from stelar_core.hub.recovery import Recovery
from stelar_core.hub.rooms import Rooms
from stelar_core.hub.session import Session
from stelar_core.protocol import DisconnectCode, ErrorCode, Frame, FrameType, encode_frame
from stelar_core.protocol.publications import read_since

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices


class ControlFrames:
    __slots__ = ("_closed", "_config", "_gate", "_log", "_outbox", "_presence", "_recovery", "_rooms")

    def __init__(
        self,
        services: HubServices,
        gate: MessageGate,
        rooms: Rooms,
        recovery: Recovery,
        presence: Presence,
        closed: Callable[[Session, int, str], None],
    ) -> None:
        self._presence = presence
        self._config = services.config
        self._outbox = services.outbox
        self._log = services.log
        self._gate = gate
        self._rooms = rooms
        self._recovery = recovery
        self._closed = closed

    def handlers(self) -> dict[FrameType, FrameHandler]:
        return {
            FrameType.PING: self._ping,
            FrameType.PONG: self._pong,
            FrameType.CONNECT: self._connect_again,
            FrameType.DISCONNECT: self._disconnect,
            FrameType.JOIN: self._join,
            FrameType.LEAVE: self._leave,
            FrameType.ERROR: self._error,
            FrameType.PUBLICATION: self._server_only,
            FrameType.DROPPED: self._server_only,
            FrameType.PRESENCE: self._presence_frame,
        }

    def _ping(self, session: Session, frame: Frame) -> None:
        self._outbox.send(session, encode_frame(FrameType.PONG, "", frame.payload))

    def _pong(self, session: Session, frame: Frame) -> None:
        """``last_seen`` was updated on arrival; nothing else to do."""

    def _connect_again(self, session: Session, frame: Frame) -> None:
        self._outbox.invalid(session, ErrorCode.INVALID_FRAME, "already connected")

    def _disconnect(self, session: Session, frame: Frame) -> None:
        session.connection.close(DisconnectCode.NORMAL, "client disconnected")
        self._closed(session, DisconnectCode.NORMAL, "client disconnected")

    def _error(self, session: Session, frame: Frame) -> None:
        # Error frames go from server to client only; say so, as for any frame a client must not send.
        self._log.info("client %s sent an error frame %r: %r", session.id, frame.event, frame.payload[:200])
        self._outbox.invalid(session, ErrorCode.INVALID_FRAME, "clients must not send error frames (type 10)")

    def _server_only(self, session: Session, frame: Frame) -> None:
        kind = (
            "publications (type 11); emit to a room instead"
            if frame.type is FrameType.PUBLICATION
            else ("dropped notices (type 12)")
        )
        self._outbox.invalid(session, ErrorCode.INVALID_FRAME, f"clients must not send {kind}")

    def _presence_frame(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        return self._gate.rate_checked(session, frame, "", self._presence_asked)

    def _presence_asked(self, session: Session, frame: Frame) -> None:
        """``{"state": ...}`` sets this member's state in the room; ``{"snapshot": true}`` asks
        for the room's members again (a client that missed a diff)."""
        try:
            body = frame.json()
        except ProtocolError as exc:
            self._outbox.invalid(session, exc.code, exc.reason, frame)
            return
        room = frame.event
        if isinstance(body, dict) and body.get("snapshot") is True:
            refusal = self._presence.snapshot_asked(session, room)
        elif isinstance(body, dict) and "state" in body:
            refusal = self._presence.update(session, room, body["state"])
        else:
            self._outbox.invalid(
                session,
                ErrorCode.INVALID_FRAME,
                'a presence frame is {"state": ...} or {"snapshot": true}',
                frame,
            )
            return
        if refusal is not None:
            self._outbox.invalid(session, ErrorCode.NO_PRESENCE, refusal, frame)

    def _join(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        return self._gate.rate_checked(session, frame, "", self._join_requested)

    def _leave(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        return self._gate.rate_checked(session, frame, "", self._leave_requested)

    def _join_requested(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        try:
            since = read_since(frame.json())
        except ProtocolError as exc:
            self._outbox.invalid(session, exc.code, exc.reason, frame)
            return None
        room = frame.event
        refusal = self._rooms.join(session, room)
        if refusal is not None:
            self._outbox.answer_room(session, frame, refusal)
            return None
        return self._recovery.joined(session, room, self._config().rooms.for_room(room), since)

    def _leave_requested(self, session: Session, frame: Frame) -> None:
        self._outbox.answer_room(session, frame, self._rooms.leave(session, frame.event))
