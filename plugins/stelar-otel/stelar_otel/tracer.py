"""The tracer on OpenTelemetry's API (imported only when tracing is on).

Spans follow the messaging semantic conventions. A destination in a span name is an event name
or a room's pattern, never a raw room or client id (those are attributes):

- ``process {event}`` (CONSUMER) per event or request a client sends, current while the gate and
  the handler run (the spans a handler starts are its children); the child of the client's span
  when the client attached its trace context. A request's answer is a ``settle`` event on it.
- ``send {destination}`` (PRODUCER) per send to a room, to everyone or to one client.
- ``process {destination}`` (CONSUMER) per node that delivers a traced send, the child of the
  send and linked to it, with the number of local recipients.
- ``connect`` (SERVER) per handshake, and per connection the admission refuses.

The SDK's sampler decides for every span started. Starting one costs the SDK a few
microseconds even when its sampler then drops it, so ``sample_ratio`` below 1 makes the head
decision here first, for what arrives with no trace context of its own (no client context, no
current span): a random draw keeps that share, and the rest is processed under one unsampled
context made once (so that spans a handler starts are not recorded either, as under the SDK's
parent-based sampler).
"""

from __future__ import annotations

import random
from contextvars import ContextVar, Token
from typing import cast

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

SYSTEM = "stelar"
INSTRUMENTATION = "stelar_otel"


def parse_traceparent(value: str) -> SpanContext | None:
    """A remote span context from a traceparent stelar-core already found well formed."""
    _, trace_id, span_id, flags = value.split("-")[:4]
    span_context = SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)))
    return span_context if span_context.is_valid else None


def format_traceparent(span_context: SpanContext) -> str:
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{span_context.trace_flags:02x}"


def _remote(span_context: SpanContext | None) -> Context | None:
    """A context whose current span is the remote ``span_context`` (None: no parent)."""
    return None if span_context is None else trace.set_span_in_context(trace.NonRecordingSpan(span_context))


# The context of what the head decision left out: valid (so that a parent-based sampler follows
# it) and not sampled. Its ids are fixed: nothing under it is recorded.
_UNSAMPLED = trace.set_span_in_context(
    trace.NonRecordingSpan(SpanContext(0x5E1A5E1A5E1A5E1A5E1A5E1A5E1A5E1A, 0x5E1A5E1A5E1A5E1A, False))
)


def _runtime_variable() -> ContextVar[Context] | None:
    """The context variable under OpenTelemetry's default runtime context, set directly for what
    the head decision left out (once per message: ``context.attach`` is three calls deep);
    None under another runtime context, which then goes through the API."""
    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    return variable if isinstance(variable, ContextVar) else None


_CONTEXT_VAR = _runtime_variable()


class OtelTracer:
    def __init__(self, tracer: trace.Tracer, sample_ratio: float = 1.0) -> None:
        self._tracer = tracer
        self._ratio = sample_ratio
        self._random = random.random

    def _left_out(self) -> bool:
        """The head decision for something with no trace context of its own: not kept."""
        return self._ratio < 1.0 and self._random() >= self._ratio

    def process(
        self, event: str, request: bool, client_id: str, protocol: str, size: int, parent: str | None
    ) -> OtelScope | UnsampledScope:
        # (The head decision inline: this runs for every message.)
        if parent is None and self._ratio < 1.0 and self._random() >= self._ratio:
            return UNSAMPLED_SCOPE
        span = self._tracer.start_span(
            f"process {event}",
            context=_remote(None if parent is None else parse_traceparent(parent)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "request" if request else "process",
                "messaging.destination.name": event,
                "messaging.client.id": client_id,
                "messaging.message.body.size": size,
                "stelar.transport": protocol,
            },
        )
        return OtelScope(span)

    def connect(self, protocol: str | None) -> OtelScope | UnsampledScope:
        if self._left_out():
            return UNSAMPLED_SCOPE
        attributes = {"messaging.system": SYSTEM}
        if protocol is not None:
            attributes["stelar.transport"] = protocol
        return OtelScope(self._tracer.start_span("connect", kind=SpanKind.SERVER, attributes=attributes))

    def send(self, destination: str, room: str | None, event: str) -> OtelSend:
        if (
            self._ratio < 1.0
            and not trace.get_current_span().get_span_context().is_valid
            and self._left_out()
        ):
            return NOT_SENT
        attributes: dict[str, str] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.template": destination,
            "stelar.event": event,
        }
        if room is not None:
            attributes["messaging.destination.name"] = room
        span = self._tracer.start_span(f"send {destination}", kind=SpanKind.PRODUCER, attributes=attributes)
        span_context = span.get_span_context()
        # Only a recorded send travels on: its deliveries are then recorded too (parent-based).
        carried = format_traceparent(span_context) if span_context.trace_flags.sampled else None
        return OtelSend(span, carried)

    def deliver(self, destination: str, room: str | None, parent: str) -> OtelDelivery:
        producer = parse_traceparent(parent)
        attributes: dict[str, str] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "deliver",
            "messaging.destination.template": destination,
        }
        if room is not None:
            attributes["messaging.destination.name"] = room
        span = self._tracer.start_span(
            f"process {destination}",
            context=_remote(producer),
            kind=SpanKind.CONSUMER,
            links=() if producer is None else (Link(producer),),
            attributes=attributes,
        )
        return OtelDelivery(span)


class OtelScope:
    __slots__ = ("_error", "recording", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        # (A span the SDK's sampler dropped records nothing either, but its calls cost little
        # next to starting it, and a parent-based sampler needs its context current.)
        self.recording = True
        self._error: str | None = None

    def activate(self) -> object:
        return context.attach(trace.set_span_in_context(self.span))

    def deactivate(self, token: object) -> None:
        context.detach(cast("Token[Context]", token))

    def refused(self, error_type: str) -> None:
        # The first reason stands: a handler's exception, then the handler_error it is answered with.
        if self._error is None:
            self._error = error_type
            self.span.set_attribute("error.type", error_type)
            self.span.set_status(Status(StatusCode.ERROR, error_type))

    def failed(self, error: BaseException) -> None:
        self.span.record_exception(error)
        self.refused(type(error).__qualname__)

    def settled(self) -> None:
        # The answer's outcome is the span's status: error.type set by refused() or failed().
        self.span.add_event("settle", {"messaging.operation.type": "settle"})

    def end(self) -> None:
        self.span.end()


class UnsampledScope:
    """What the head decision left out: processed under the one unsampled context."""

    __slots__ = ()
    recording = False

    def activate(self) -> object:
        if _CONTEXT_VAR is not None:
            return _CONTEXT_VAR.set(_UNSAMPLED)
        return context.attach(_UNSAMPLED)

    def deactivate(self, token: object) -> None:
        if _CONTEXT_VAR is not None:
            _CONTEXT_VAR.reset(cast("Token[Context]", token))
        else:
            context.detach(cast("Token[Context]", token))

    def refused(self, error_type: str) -> None: ...

    def failed(self, error: BaseException) -> None: ...

    def settled(self) -> None: ...

    def end(self) -> None: ...


UNSAMPLED_SCOPE = UnsampledScope()


class OtelSend:
    __slots__ = ("context", "span")

    def __init__(self, span: Span, carried: str | None) -> None:
        self.span = span
        self.context = carried

    def end(self) -> None:
        self.span.end()


class OtelDelivery:
    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def end(self, recipients: int) -> None:
        self.span.set_attribute("stelar.recipients", recipients)
        self.span.end()


NOT_SENT = OtelSend(trace.INVALID_SPAN, None)
