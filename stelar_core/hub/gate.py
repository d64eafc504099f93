"""What a message passes before its handlers: the event name, the payload size and the rate
limit (per client > per event > global). A refused message is answered the way its sender waits
for it; going over a rate limit disconnects the client unless a hook vetoes it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from stelar_core import tracing
from stelar_core.config import ServerConfig
from stelar_core.hub.hooks import Hook
from stelar_core.hub.ratelimit import RateLimitPolicy
from stelar_core.hub.session import Session
from stelar_core.protocol import DisconnectCode, ErrorCode, Frame, FrameType
from stelar_core.tracing import Tracer

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices

FrameHandler = Callable[[Session, Frame], "Awaitable[None] | None"]


class MessageEntry(Protocol):
    def __call__(self, session: Session, frame: Frame, then: FrameHandler) -> Awaitable[None] | None: ...


class MessageGate:
    __slots__ = (
        "_close",
        "_config",
        "_counters",
        "_handlers",
        "_hooks",
        "_log",
        "_outbox",
        "_taps",
        "limits",
        "message",
    )

    def __init__(self, services: HubServices, limits: RateLimitPolicy) -> None:
        self._config = services.config
        self.limits = limits
        self._counters = services.counters
        self._hooks = services.hooks
        self._outbox = services.outbox
        self._close = services.close
        self._log = services.log
        self._taps = services.taps
        self._handlers = services.handlers
        # message(session, frame, then): ``then(session, frame)`` for an event or request whose
        # name and payload size are within bounds and whose rate limit allows it; else the
        # sender is told, and None. Chosen once: without a tracer, the path has nothing added.
        tracer = services.tracer
        self.message: MessageEntry = (
            self._message if tracer is None else functools.partial(self._traced, tracer)
        )

    def _traced(
        self, tracer: Tracer, session: Session, frame: Frame, then: FrameHandler
    ) -> Awaitable[None] | None:
        request = frame.type is FrameType.ACK_REQUEST
        event = frame.event
        parent = None if frame.trace is None else tracing.checked(frame.trace, self._invalid_context)
        # (Positional arguments: this runs for every message, and keywords cost more.)
        scope = tracer.process(
            event if self._handlers.declares(event, request) else tracing.UNDECLARED,
            request,
            session.id,
            session.protocol,
            len(frame.payload),
            parent,
        )
        return tracing.within(scope, self._message, session, frame, then)

    def _invalid_context(self) -> None:
        self._counters.other[tracing.INVALID_CONTEXT] += 1

    def _message(self, session: Session, frame: Frame, then: FrameHandler) -> Awaitable[None] | None:
        config = self._config()
        session.received += 1  # handled, whatever the outcome: a resumed client does not resend it
        answers = session.answers
        if answers and frame.ack_id in answers:
            # The client uses this ack id again: it got the answer kept under it.
            del answers[frame.ack_id]
        event = frame.event
        if self._taps.listeners:
            kind = "request" if frame.type is FrameType.ACK_REQUEST else "event"
            self._taps.emit(kind, event, client_id=session.id)
        if (
            not event
            or len(event) > config.max_event_name_length
            or len(frame.payload) > config.max_payload_size
        ):
            self._malformed(session, frame, config)
            return None
        return self.rate_checked(session, frame, event, then)

    def _malformed(self, session: Session, frame: Frame, config: ServerConfig) -> None:
        event = frame.event
        max_name = config.max_event_name_length
        if not event or len(event) > max_name:
            reason = (
                "event name is empty"
                if not event
                else f"event name is {len(event)} characters, at most {max_name}"
            )
            self._outbox.invalid(session, ErrorCode.INVALID_EVENT, reason, frame)
            return
        size, limit = len(frame.payload), config.max_payload_size
        self._counters.payload_too_large += 1
        self._hooks.notify(
            Hook.PAYLOAD_TOO_LARGE, client_id=session.id, event=event, size=size, max_size=limit
        )
        self._outbox.refuse(
            session, frame, ErrorCode.PAYLOAD_TOO_LARGE, f"payload is {size} bytes, at most {limit}"
        )

    def rate_checked(
        self, session: Session, frame: Frame, event: str, then: FrameHandler
    ) -> Awaitable[None] | None:
        """``then(session, frame)`` if the rate limit of ``event`` allows it. A plain limiter
        answer costs no ``await``; an awaitable one (a shared backend) is awaited."""
        allowed = self.limits.check(session.id, event, session.rate_key)
        if allowed is True:
            return then(session, frame)
        if allowed is False:
            self._rate_limited(session, frame)
            return None
        return self._rate_checked_async(allowed, session, frame, then)

    async def _rate_checked_async(
        self, allowed: Awaitable[bool], session: Session, frame: Frame, then: FrameHandler
    ) -> None:
        try:
            ok = await allowed
        except Exception:
            self._log.exception("rate limiter failed; letting the message of %s through", session.id)
            ok = True
        if not ok:
            self._rate_limited(session, frame)
            return
        pending = then(session, frame)
        if pending is not None:
            await pending

    def _rate_limited(self, session: Session, frame: Frame) -> None:
        self._counters.rate_limited += 1
        disconnect = self._hooks.allows(
            Hook.RATE_LIMIT_EXCEEDED, client_id=session.id, event=frame.event, protocol=session.protocol
        )
        self._outbox.refuse(session, frame, ErrorCode.RATE_LIMITED, "rate limit exceeded")
        if disconnect:
            self._close(session, DisconnectCode.POLICY_VIOLATION, "rate limit exceeded")
