"""The frames that are not messages: ping and pong, a client's goodbye, joining and leaving
rooms (rate-limited like messages), and the frames a client must not send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from stelar_core.hub.gate import FrameHandler, MessageGate
from stelar_core.hub.rooms import Rooms
from stelar_core.hub.session import Session
from stelar_core.protocol import DisconnectCode, ErrorCode, Frame, FrameType, encode_frame

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices


class ControlFrames:
    __slots__ = ("_closed", "_gate", "_log", "_outbox", "_rooms")

    def __init__(
        self,
        services: HubServices,
        gate: MessageGate,
        rooms: Rooms,
        closed: Callable[[Session, int, str], None],
    ) -> None:
        self._outbox = services.outbox
        self._log = services.log
        self._gate = gate
        self._rooms = rooms
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

    def _join(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        return self._gate.rate_checked(session, frame, "", self._join_requested)

    def _leave(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        return self._gate.rate_checked(session, frame, "", self._leave_requested)

    def _join_requested(self, session: Session, frame: Frame) -> None:
        self._outbox.answer_room(session, frame, self._rooms.join(session, frame.event))

    def _leave_requested(self, session: Session, frame: Frame) -> None:
        self._outbox.answer_room(session, frame, self._rooms.leave(session, frame.event))
