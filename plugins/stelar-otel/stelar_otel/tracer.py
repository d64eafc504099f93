"""The tracer on OpenTelemetry's API (imported only when tracing is on).

One CONSUMER span ``process {event}`` per event or request a client sends, with the messaging
semantic conventions' attributes: the event name is the destination (not an id: a room's or a
client's id never goes into a span name). The span is current while the gate and the handler run,
so the spans a handler starts are its children.
"""

from __future__ import annotations

from contextvars import Token
from typing import cast

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

SYSTEM = "stelar"
INSTRUMENTATION = "stelar_otel"


class OtelTracer:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def process(self, event: str, request: bool, client_id: str, protocol: str, size: int) -> OtelScope:
        span = self._tracer.start_span(
            f"process {event}",
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

    def end(self) -> None:
        self.span.end()
