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
"""

from __future__ import annotations

from contextvars import Token
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


def _remote(parent: str | None) -> Context | None:
    span_context = None if parent is None else parse_traceparent(parent)
    if span_context is None:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


class OtelTracer:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def process(
        self, event: str, request: bool, client_id: str, protocol: str, size: int, parent: str | None
    ) -> OtelScope:
        span = self._tracer.start_span(
            f"process {event}",
            context=_remote(parent),
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

    def connect(self, protocol: str | None) -> OtelScope:
        attributes = {"messaging.system": SYSTEM}
        if protocol is not None:
            attributes["stelar.transport"] = protocol
        return OtelScope(self._tracer.start_span("connect", kind=SpanKind.SERVER, attributes=attributes))

    def send(self, destination: str, room: str | None, event: str) -> OtelSend:
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
            context=None if producer is None else trace.set_span_in_context(trace.NonRecordingSpan(producer)),
            kind=SpanKind.CONSUMER,
            links=() if producer is None else (Link(producer),),
            attributes=attributes,
        )
        return OtelDelivery(span)


class OtelScope:
    __slots__ = ("_error", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
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
