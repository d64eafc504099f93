"""A traced stelar node for the tests that follow one trace across processes, run as a process
of its own:

    python tests/otel_node.py '{"broker": "redis", "url": "redis://127.0.0.1:PORT", "prefix": "..."}'

(or ``"broker": "nats"`` with a ``nats://`` URL).

It keeps its spans in the SDK's in-memory exporter and prints one JSON line (its transport URLs)
once it listens, then serves until SIGTERM. ``say`` sends a client's text into a room; the
request ``spans`` answers with the spans this node ended, as plain values.
"""

from __future__ import annotations

import asyncio
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stelar_core import StelarServer

EXPORTER = InMemorySpanExporter()


def plain(span: ReadableSpan) -> dict:
    """What the tests read of a span: its ids as hex, as the W3C traceparent writes them."""
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_id": None if span.parent is None else f"{span.parent.span_id:016x}",
        "links": [f"{link.context.span_id:016x}" for link in span.links],
        "attributes": dict(span.attributes or {}),
    }


def _broker_options(settings: dict) -> dict:
    if settings["broker"] == "nats":
        return {"servers": [settings["url"]], "prefix": settings["prefix"]}
    return {"url": settings["url"], "prefix": settings["prefix"]}


async def main(settings: dict) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    server = StelarServer(
        host="127.0.0.1",
        port=0,
        tcp_port=0,
        transports=["ws", "tcp"],
        broker=settings["broker"],
        **{settings["broker"]: _broker_options(settings)},
        rooms={"chat:*": {}},
        otel={"enabled": True},
    )

    @server.on("say")
    def say(ctx):
        ctx.to(ctx.data["room"], "said", ctx.data["text"])

    @server.on_ack("spans")
    def spans(ctx):
        return [plain(span) for span in EXPORTER.get_finished_spans()]

    await server.start()
    print(json.dumps({name: urls[0] for name, urls in server.addresses.items()}), flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(15, stopping.set)
    await stopping.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
