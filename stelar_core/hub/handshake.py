"""The connect handshake: the client's ``connect`` frame, the middleware chain, then the
welcome (or an error and a close)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stelar_core.config import ServerConfig
from stelar_core.errors import ConnectionRefused, ProtocolError
from stelar_core.hub.context import Context
from stelar_core.hub.handlers import HandlerRegistry, HandlerRunner
from stelar_core.hub.hooks import Hook, HookRunner
from stelar_core.hub.middleware import run_middleware
from stelar_core.hub.outbox import Outbox
from stelar_core.hub.session import Session, SessionState
from stelar_core.hub.stats import Counters
from stelar_core.protocol import (
    PROTOCOL_VERSION,
    DisconnectCode,
    ErrorCode,
    Frame,
    FrameType,
    dump_json,
    encode_frame,
)


class Handshake:
    def __init__(
        self,
        config: Callable[[], ServerConfig],
        handlers: HandlerRegistry,
        runner: HandlerRunner,
        outbox: Outbox,
        hooks: HookRunner,
        counters: Counters,
        context: Callable[[Session, str, Any], Context],
        opened: Callable[[Session], None],
        close: Callable[[Session, int, str], None],
        log: logging.Logger,
    ) -> None:
        self._config = config
        self._handlers = handlers
        self._runner = runner
        self._outbox = outbox
        self._hooks = hooks
        self._counters = counters
        self._context = context
        self._opened = opened
        self._close = close
        self._log = log

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
