"""Traces of a stelar server on the console: stelar-otel with the OpenTelemetry SDK.

    pip install stelar-core stelar-tcp stelar-otel opentelemetry-sdk
    python examples/otel_console.py

A server on a free TCP port traces what it processes; a client sends one event and one request.
Each span is printed as one line (name, kind, parent, attributes). For a collector, put an OTLP
exporter (opentelemetry-exporter-otlp) where the console one is.
"""

import asyncio
import json

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from stelar_core import StelarClient, StelarServer


def one_line(span) -> str:
    parent = span.parent.span_id if span.parent else None
    fields = {"name": span.name, "kind": span.kind.name, "child_of": parent and f"{parent:016x}"}
    return json.dumps({**fields, "span": f"{span.context.span_id:016x}", **dict(span.attributes)}) + "\n"


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
trace.set_tracer_provider(provider)
app_tracer = trace.get_tracer("example")


async def main() -> None:
    server = StelarServer(transports=["tcp"], host="127.0.0.1", tcp_port=0, otel={"enabled": True})

    @server.on("chat")
    async def chat(ctx):
        with app_tracer.start_as_current_span("store message"):  # a child of "process chat"
            await asyncio.sleep(0)

    @server.on_ack("add")
    def add(ctx):
        return sum(ctx.data)

    await server.start()
    client = StelarClient(server.addresses["tcp"][0])
    await client.connect()
    client.emit("chat", {"text": "hello"})
    print("add ->", await client.request("add", [1, 2]), flush=True)
    await client.disconnect()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
