"""Request/response (ACKs) on the server side: answering a client's requests with the
``on_ack`` handlers, and asking a client with ``server.request`` / ``ctx.request``."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from stelar_core.errors import NotConnected, ProtocolError
from stelar_core.hub.context import Context
from stelar_core.hub.handlers import AckHandler, PayloadRefused
from stelar_core.hub.session import Session
from stelar_core.hub.stats import LatencyHistogram
from stelar_core.protocol import ErrorCode, Frame, FrameType, dump_json, encode_frame, load_json
from stelar_core.protocol.acks import ok_answer

if TYPE_CHECKING:
    from stelar_core.hub.gate import FrameHandler
    from stelar_core.hub.services import HubServices

MakeContext = Callable[[Session, str, Any], Context]
# What a handler returns most of the time: not awaitable, told apart without inspect's ABC checks.
_PLAIN_RESULTS = frozenset({type(None), bool, int, float, str, dict, list})


class Requests:
    def __init__(self, services: HubServices, own: Mapping[str, FrameHandler]) -> None:
        # The protocol's own requests ($history...), answered by the hub's parts: looked at only
        # when no application handler has the name, so they cost other requests nothing.
        self._own = own
        self._config = services.config
        self._registry = services.handlers
        self._runner = services.runner
        self._outbox = services.outbox
        self._counters = services.counters
        self._context = services.context
        self._spawn = services.spawn
        self._log = services.log
        self.latency = LatencyHistogram()

    # ------------------------------------------------------------------ answering

    def answer(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        """Answer one request frame. Returns an awaitable when the session must hold its later
        frames until it is done: an ordered async handler, or a concurrent one waiting for a slot."""
        handler = self._registry.ack(frame.event)
        if handler is None:
            own = self._own.get(frame.event)
            if own is not None:
                return own(session, frame)
            self._outbox.refuse(
                session, frame, ErrorCode.NO_HANDLER, f"no handler for request {frame.event!r}"
            )
            return None
        try:
            data = load_json(frame.payload)
        except ProtocolError as exc:
            self._outbox.invalid(session, exc.code, exc.reason, frame)
            return None
        if handler.concurrent:
            slots = session.request_slots(self._config().max_concurrent_requests)
            if not slots.take():
                return self._answer_when_a_slot_frees(session, frame, handler, data)
            self._spawn(self._answer_in_slot(session, frame, handler, data))
            return None
        return self._call(session, frame, handler, data)

    async def _answer_when_a_slot_frees(
        self, session: Session, frame: Frame, handler: AckHandler, data: Any
    ) -> None:
        slots = session.request_slots(self._config().max_concurrent_requests)
        await slots.wait_and_take()
        self._spawn(self._answer_in_slot(session, frame, handler, data))

    async def _answer_in_slot(self, session: Session, frame: Frame, handler: AckHandler, data: Any) -> None:
        try:
            pending = self._call(session, frame, handler, data)
            if pending is not None:
                await pending
        finally:
            session.request_slots(self._config().max_concurrent_requests).give_back()

    def _call(self, session: Session, frame: Frame, handler: AckHandler, data: Any) -> Awaitable[None] | None:
        ctx = self._context(session, frame.event, data)
        started = time.perf_counter()
        try:
            result = handler.function(ctx)
        except PayloadRefused as refused:
            self._runner.refuse_payload(ctx, refused.invalid, frame)
            return None
        except Exception as exc:
            self._runner.failed(handler.function, ctx)
            self._outbox.reply_error(session, frame, ErrorCode.HANDLER_ERROR, str(exc))
            return None
        if result.__class__ not in _PLAIN_RESULTS and inspect.isawaitable(result):
            return self._reply_when_done(result, session, frame, handler, ctx, started)
        self._reply(session, frame, result)
        self.latency.observe(time.perf_counter() - started)
        return None

    async def _reply_when_done(
        self,
        result: Awaitable[Any],
        session: Session,
        frame: Frame,
        handler: AckHandler,
        ctx: Context,
        started: float,
    ) -> None:
        try:
            value = await result
        except Exception as exc:
            self._runner.failed(handler.function, ctx)
            self._outbox.reply_error(session, frame, ErrorCode.HANDLER_ERROR, str(exc))
            return
        self._reply(session, frame, value)
        self.latency.observe(time.perf_counter() - started)

    def _reply(self, session: Session, request: Frame, value: Any) -> None:
        try:
            payload = ok_answer(value)
        except (TypeError, ValueError) as exc:
            self._counters.handler_errors += 1
            self._log.error("reply to request %r is not JSON-serializable: %s", request.event, exc)
            self._outbox.reply_error(
                session, request, ErrorCode.HANDLER_ERROR, "reply is not JSON-serializable"
            )
            return
        self._outbox.answer(session, request, payload)

    # ------------------------------------------------------------------ asking a client

    def response_received(self, session: Session, frame: Frame) -> None:
        assert frame.ack_id is not None  # decode_frame guarantees it for this type
        try:
            answer = frame.json()
        except ProtocolError as exc:
            self._outbox.invalid(session, exc.code, exc.reason)
            answer = {"error": {"code": exc.code, "message": exc.reason}}
        if not session.acks.resolve(frame.ack_id, answer):
            self._outbox.invalid(
                session, ErrorCode.UNKNOWN_ACK, f"no request is waiting for ack id {frame.ack_id}"
            )

    async def ask(self, session: Session, event: str, data: Any, *, timeout: float | None) -> Any:
        if not session.is_open:
            raise NotConnected(f"client {session.id} is not connected")
        payload = dump_json(data)
        ack_id, future = session.acks.open()
        self._outbox.send(session, encode_frame(FrameType.ACK_REQUEST, event, payload, ack_id))
        return await session.acks.wait(ack_id, future, timeout or self._config().ack_timeout, event)
