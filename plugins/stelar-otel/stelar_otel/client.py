"""For clients: the current OpenTelemetry span's trace context, to attach to what they send.

    from stelar_otel.client import traceparent
    client = StelarClient(url, trace_context=traceparent)

Each emit and request then carries the span current when it is made (sent only to servers that
trace), and the server's ``process`` span is its child.
"""

from __future__ import annotations

from opentelemetry import trace

from stelar_otel.tracer import format_traceparent


def traceparent() -> str | None:
    """The W3C traceparent of the current span, or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    return format_traceparent(span_context) if span_context.is_valid else None
