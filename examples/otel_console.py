"""Traces of a stelar server on the console: stelar-otel with the OpenTelemetry SDK.

    pip install stelar-core stelar-tcp stelar-otel opentelemetry-sdk
    python examples/otel_console.py

A server on a free TCP port traces what it processes. Two clients join the room ``chat:lobby``;
one of them, inside a span of its own, sends an event whose handler stores it and sends it into
the room, and asks one request. Its client attaches the current span's trace context
(``trace_context=traceparent``), so the server's spans continue its trace.

Each span is printed as one line (name, kind, parent, attributes) as it ends, then the client's
trace as a tree with the spans' start and duration. For a collector, put an OTLP exporter
(opentelemetry-exporter-otlp) where the console one is.
"""

import asyncio
import json

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stelar_core import StelarClient, StelarServer
from stelar_otel.client import traceparent


def one_line(span: ReadableSpan) -> str:
    parent = span.parent.span_id if span.parent else None
    fields = {"name": span.name, "kind": span.kind.name, "child_of": parent and f"{parent:016x}"}
    return json.dumps({**fields, "span": f"{span.context.span_id:016x}", **dict(span.attributes)}) + "\n"


def tree(spans: list[ReadableSpan], trace_id: int) -> list[str]:
    """The spans of one trace, each under its parent, with start and duration in ms."""
    mine = sorted((s for s in spans if s.context.trace_id == trace_id), key=lambda s: s.start_time)
    start = mine[0].start_time
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in mine:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            at, took = (span.start_time - start) / 1e6, (span.end_time - span.start_time) / 1e6
            label = f"{'  ' * depth}{span.name} ({span.kind.name})"
            lines.append(f"{label:<42} +{at:7.3f} ms {took:7.3f} ms")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


kept = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
provider.add_span_processor(SimpleSpanProcessor(kept))
trace.set_tracer_provider(provider)
app_tracer = trace.get_tracer("example")


async def main() -> None:
    server = StelarServer(
        transports=["tcp"], host="127.0.0.1", tcp_port=0, rooms={"chat:*": {}}, otel={"enabled": True}
    )

    @server.on("chat")
    async def chat(ctx):
        with app_tracer.start_as_current_span("store message"):  # a child of "process chat"
            await asyncio.sleep(0)
        ctx.to("chat:lobby", "message", ctx.data)  # "send chat:*", then its delivery

    @server.on_ack("add")
    def add(ctx):
        return sum(ctx.data)

    await server.start()
    url = server.addresses["tcp"][0]
    sender = StelarClient(url, trace_context=traceparent)
    reader = StelarClient(url)
    received = asyncio.get_running_loop().create_future()
    reader.on("message", received.set_result)
    for client in (sender, reader):
        await client.connect()
        await client.join_room("chat:lobby")
    with app_tracer.start_as_current_span("user sends", kind=trace.SpanKind.PRODUCER) as root:
        sender.emit("chat", {"text": "hello"})
        print("add ->", await sender.request("add", [1, 2]), flush=True)
    print("reader got", await received, flush=True)
    for client in (sender, reader):
        await client.disconnect()
    await server.stop()
    print("\n".join(tree(list(kept.get_finished_spans()), root.get_span_context().trace_id)))


if __name__ == "__main__":
    asyncio.run(main())
