"""The connect handshake: the client's ``connect`` frame, the middleware chain, then the
welcome (or an error and a close)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from stelar_core.errors import ConnectionRefused, ProtocolError
from stelar_core.hub.hooks import Hook
from stelar_core.hub.middleware import run_middleware
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

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices


class Handshake:
    def __init__(self, services: HubServices, opened: Callable[[Session], None]) -> None:
        self._config = services.config
        self._handlers = services.handlers
        self._runner = services.runner
        self._outbox = services.outbox
        self._hooks = services.hooks
        self._counters = services.counters
        self._context = services.context
        self._opened = opened
        self._close = services.close
        self._log = services.log

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
        session.auth = auth or {}
        if self._handlers.middleware:
            return self._through_middleware(session)
        return self._accept(session)

    async def _through_middleware(self, session: Session) -> None:
        try:
            await run_middleware(
                self._handlers.middleware, self._context(session, "connect", session.auth), self._log
            )
        except ConnectionRefused as refusal:
            self.refuse(session, refusal.code, refusal.reason, refusal.close_code)
            return
        if session.state is SessionState.HANDSHAKE:
            pending = self._accept(session)
            if pending is not None:
                await pending

    def _accept(self, session: Session) -> Awaitable[None] | None:
        config = self._config()
        session.mark_open()
        self._opened(session)
        self._counters.total_connections += 1
        welcome = {
            "id": session.id,
            "v": PROTOCOL_VERSION,
            "heartbeat": config.heartbeat_interval,
            "max_payload": config.max_payload_size,
        }
        self._outbox.send(session, encode_frame(FrameType.CONNECT, "", dump_json(welcome)))
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
        if self._handlers.connection:
            return self._runner.run(self._handlers.connection, self._context(session, "", None))
        return None

    def refuse(self, session: Session, code: str, reason: str, close_code: int) -> None:
        self._counters.refused[code] += 1
        self._log.info("refused connection from %s: %s (%s)", session.remote_address, code, reason)
        self._outbox.send_error(session, code, reason)
        self._close(session, close_code, reason)
