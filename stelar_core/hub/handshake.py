"""The connect handshake: the client's ``connect`` frame, the middleware chain, then the
welcome (or an error and a close)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from stelar_core import tracing
from stelar_core.errors import ConnectionRefused, ProtocolError
from stelar_core.hub.hooks import Hook
from stelar_core.hub.middleware import run_middleware
from stelar_core.hub.resumption import Resumption, read_resume
from stelar_core.hub.rooms import RoomTable
from stelar_core.hub.session import Session, SessionState
from stelar_core.protocol import (
    PROTOCOL_VERSION,
    DisconnectCode,
    ErrorCode,
    Frame,
    FrameType,
    dump_json,
    encode_frame,
)
from stelar_core.providers import SessionRecord

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices


@attrs.frozen(slots=True)
class Resumed:
    """What a resumed session gets back once accepted: its rooms, and the answers waited for."""

    rooms: frozenset[str]
    waiting: list[int]


class Handshake:
    def __init__(
        self,
        services: HubServices,
        opened: Callable[[Session], None],
        resumption: Resumption,
        restorable: Callable[[frozenset[str]], list[str]],
        table: RoomTable,
        open_session: Callable[[str], Session | None],
    ) -> None:
        self._resumption = resumption
        self._restorable = restorable
        self._table = table
        self._open_session = open_session
        self._config = services.config
        self._handlers = services.handlers
        self._runner = services.runner
        self._outbox = services.outbox
        self._hooks = services.hooks
        self._taps = services.taps
        self._counters = services.counters
        self._context = services.context
        self._opened = opened
        self._close = services.close
        self._log = services.log
        self._traced = services.tracer is not None

    def connect_received(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        try:
            payload = frame.json()
        except ProtocolError as exc:
            self.refuse(session, exc.code, exc.reason, DisconnectCode.PROTOCOL_ERROR)
            return None
        auth = payload.get("auth") if isinstance(payload, dict) else payload
        if not isinstance(auth, dict | None):
            self.refuse(
                session,
                ErrorCode.INVALID_FRAME,
                'connect payload must be {"auth": {...}}',
                DisconnectCode.PROTOCOL_ERROR,
            )
            return None
        try:
            asked = payload.get("resume") if isinstance(payload, dict) else None
            resume = read_resume(asked, self._config().max_pending_acks)
        except ProtocolError as exc:
            self.refuse(session, exc.code, exc.reason, DisconnectCode.PROTOCOL_ERROR)
            return None
        session.auth = auth or {}
        if resume is None:
            return self._continue(session, None)
        resumed = self._resume_here(session, *resume)
        if resumed is None and self._resumption.shared:
            return self._resume_elsewhere(session, *resume)
        if resumed is None:
            self._counters.recoveries["session_not_resumed"] += 1
        return self._continue(session, resumed)

    def _continue(self, session: Session, resumed: Resumed | None) -> Awaitable[None] | None:
        if self._handlers.middleware:
            return self._through_middleware(session, resumed)
        return self._accept(session, resumed)

    async def _resume_elsewhere(
        self, session: Session, session_id: str, token: str, waiting: list[int]
    ) -> None:
        """The session closed on another node: take it from the store the nodes share."""
        record = await self._resumption.take_shared(session_id, token)
        if session.state is not SessionState.HANDSHAKE:
            return
        resumed = None
        if record is None:
            self._counters.recoveries["session_not_resumed"] += 1
        else:
            resumed = _take_over(session, record, waiting)
        pending = self._continue(session, resumed)
        if pending is not None:
            await pending

    def _resume_here(
        self, session: Session, session_id: str, token: str, waiting: list[int]
    ) -> Resumed | None:
        """Take over the kept session ``session_id`` of this node (closing its old connection
        first if the server has not seen it go yet); None when this node does not have it."""
        live = self._open_session(session_id)
        if (
            live is not None
            and live.resume_token is not None
            and hmac.compare_digest(live.resume_token.encode(), token.encode())
        ):
            self._close(live, DisconnectCode.NORMAL, "resumed by a new connection")
        kept = self._resumption.take(session_id, token)
        if kept is None:
            return None
        previous = kept.session
        previous.successor = session  # its late answers come to this connection
        record = SessionRecord(
            previous.id, previous.metadata, kept.rooms, previous.received, previous.answers or {}
        )
        return _take_over(session, record, waiting)

    async def _through_middleware(self, session: Session, resumed: Resumed | None) -> None:
        try:
            await run_middleware(
                self._handlers.middleware, self._context(session, "connect", session.auth), self._log
            )
        except ConnectionRefused as refusal:
            self.refuse(session, refusal.code, refusal.reason, refusal.close_code)
            return
        if session.state is SessionState.HANDSHAKE:
            pending = self._accept(session, resumed)
            if pending is not None:
                await pending

    def _accept(self, session: Session, resumed: Resumed | None) -> Awaitable[None] | None:
        config = self._config()
        session.mark_open()
        self._opened(session)
        self._counters.total_connections += 1
        welcome: dict[str, Any] = {
            "id": session.id,
            "v": PROTOCOL_VERSION,
            "heartbeat": config.heartbeat_interval,
            "max_payload": config.max_payload_size,
        }
        if self._traced:
            # The client may attach trace context to its events and requests.
            welcome["trace"] = True
        token = self._resumption.opened(session)
        if token is not None:
            welcome["resume"] = {"token": token, "window": config.recovery_window}
        rooms = [] if resumed is None else self._restorable(resumed.rooms)
        if resumed is not None:
            self._counters.recoveries["session_resumed"] += 1
            welcome.update({"resumed": True, "received": session.received, "rooms": rooms})
        self._outbox.send(session, encode_frame(FrameType.CONNECT, "", dump_json(welcome)))
        # Back in its rooms after the welcome: nothing (a presence snapshot) may come before it.
        for room in rooms:
            self._table.add(room, session)
        if resumed is not None and session.answers:
            # Answers the client did not get before its connection went: sent again, not re-run.
            for ack_id in resumed.waiting:
                answer = session.answers.get(ack_id)
                if answer is not None:
                    self._counters.other["answers_resent"] += 1
                    self._outbox.send(session, answer)
        self._log.info(
            "client %s connected over %s from %s", session.id, session.protocol, session.remote_address
        )
        self._hooks.notify(
            Hook.CLIENT_CONNECT,
            client_id=session.id,
            ip=session.remote_address,
            protocol=session.protocol,
            metadata=session.metadata,
        )
        if self._taps.listeners:
            self._taps.emit("connect", client_id=session.id)
        if self._handlers.connection:
            return self._runner.run(self._handlers.connection, self._context(session, "", None))
        return None

    def refuse(self, session: Session, code: str, reason: str, close_code: int) -> None:
        self._counters.refused[code] += 1
        tracing.refused(code)
        self._log.info("refused connection from %s: %s (%s)", session.remote_address, code, reason)
        self._outbox.send_error(session, code, reason)
        self._close(session, close_code, reason)


def _take_over(session: Session, record: SessionRecord, waiting: list[int]) -> Resumed:
    """``session`` goes on as the one ``record`` describes."""
    session.id = record.id
    session.metadata = record.metadata
    session.received = record.received
    session.answers = record.answers
    session.recovered = True
    return Resumed(record.rooms, waiting)
