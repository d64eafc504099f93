"""stelar doing the reference servers' work: echo ACKs, relay "fan" events to the room.

    python bench/servers/stelar_relay.py tcp|ws [asyncio|uvloop] [--frame-per-recipient] [--profile FILE]
        [--redis URL PREFIX] [--nats URL PREFIX] [--ip-limit N] [--tls CERT KEY] [--history SIZE]
        [--presence] [--api KEY] [--otel SDK_RATIO SAMPLE_RATIO]

Prints "PORT <n>" once listening, serves until SIGTERM. ``--frame-per-recipient`` (ws) turns off
the shared broadcast framing. ``--redis URL PREFIX`` (or ``--nats``) joins a cluster on that broker
(bench/cluster.py), where the ``ask`` request asks the client whose ID it carries, on whatever
node. ``--tls CERT KEY`` serves tcps:// or wss:// (stelar-tls; bench/tls.py). ``--history SIZE``
keeps the last SIZE messages of "room" (bench/delivery.py); ``--presence`` makes "room" a presence
room (bench/presence.py). ``--api KEY`` serves the server API with that key, its limits out of
the way (bench/emitters.py). ``--otel SDK_RATIO SAMPLE_RATIO`` traces with stelar-otel, the SDK's
sampler keeping SDK_RATIO of root traces and stelar-otel's ``sample_ratio`` SAMPLE_RATIO, spans
exported to nowhere (bench/tracing.py). ``--profile FILE`` profiles
(cProfile) from SIGUSR1 to SIGUSR2, which the load generator sends around the measured part of a
scenario, and writes FILE at exit.
"""

import asyncio
import cProfile
import signal
import sys

from stelar_core import StelarServer
from stelar_core.eventloop import run
from stelar_ws import WsTransport

PROFILE = cProfile.Profile()


def relay_server(**options) -> StelarServer:
    """The reference work (echo ACKs, "fan" relayed to the room) with limits out of the way;
    ``options`` say where it listens (bench/servers/stelar_asgi_relay.py serves it through ASGI)."""
    limits_off = {
        "rate_limit": None,
        "max_connections": 20_000,
        "max_connections_per_ip": 20_000,
        "max_queued_messages": 10_000,
        "heartbeat_interval": 300,
        "heartbeat_timeout": 600,
    }
    server = StelarServer(**{**limits_off, **options})
    server.on_ack("echo", lambda ctx: ctx.data)
    server.on("fan", lambda ctx: ctx.to("room", "fan", ctx.data))
    return server


def trace_to_nowhere(ratio: float) -> None:
    """The OpenTelemetry SDK as an application sets it up (a ratio sampler, a batch processor),
    exporting to an exporter that drops what it gets."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Dropping(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(provider)


async def main(transport: str):
    WsTransport.share_encoding = "--frame-per-recipient" not in sys.argv
    listeners = {"tcp": {"port": None, "tcp_port": 0}, "ws": {"port": 0}}[transport]
    cluster = {}
    if "--redis" in sys.argv:
        url, prefix = sys.argv[sys.argv.index("--redis") + 1 : sys.argv.index("--redis") + 3]
        # Slow heartbeats: INFO commandstats then counts the messages, not the liveness checks.
        redis = {"url": url, "prefix": prefix, "heartbeat_interval": 30.0, "node_timeout": 60.0}
        cluster = {"broker": "redis", "redis": redis}
    if "--nats" in sys.argv:
        url, prefix = sys.argv[sys.argv.index("--nats") + 1 : sys.argv.index("--nats") + 3]
        nats = {"servers": [url], "prefix": prefix, "heartbeat_interval": 30.0, "node_timeout": 60.0}
        cluster = {"broker": "nats", "nats": nats}
    if "--ip-limit" in sys.argv:
        # The exact per-IP limit across nodes: every admission reserves a place in Redis.
        cluster["ip_tracker"] = "redis"
        cluster["max_connections_per_ip"] = int(sys.argv[sys.argv.index("--ip-limit") + 1])
    if "--tls" in sys.argv:
        cert, key = sys.argv[sys.argv.index("--tls") + 1 : sys.argv.index("--tls") + 3]
        cluster["tls"] = {"cert": cert, "key": key}
    if "--history" in sys.argv:
        cluster["rooms"] = {"room": {"history_size": int(sys.argv[sys.argv.index("--history") + 1])}}
    if "--presence" in sys.argv:
        cluster["rooms"] = {"room": {"presence": True, "presence_max_members": 100_000}}
    if "--api" in sys.argv:
        key = sys.argv[sys.argv.index("--api") + 1]
        unlimited = {"max_points": 10_000_000, "window": 1.0}
        cluster["api"] = {"enabled": True, "keys": [key], "rate_limit": unlimited, "max_batch": 1000}
        cluster["api"]["max_body_size"] = 1 << 20
    if "--otel" in sys.argv:
        sdk_ratio, sample_ratio = map(
            float, sys.argv[sys.argv.index("--otel") + 1 : sys.argv.index("--otel") + 3]
        )
        trace_to_nowhere(sdk_ratio)
        cluster["otel"] = {"enabled": True, "metrics": False, "sample_ratio": sample_ratio}
    server = relay_server(**listeners, **cluster)

    # The server's counters, for a load generator that measures what it sent (bench/presence.py).
    server.on_ack("stats", lambda ctx: server.get_stats().counters)

    @server.on_ack("ask", concurrent=True)
    async def ask(ctx):
        return await server.request(ctx.data, "echo", "hello there, how is everyone doing today?")

    await server.start()
    print("PORT", server.get_port(transport), flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    if "--profile" in sys.argv:
        loop.add_signal_handler(signal.SIGUSR1, PROFILE.enable)
        loop.add_signal_handler(signal.SIGUSR2, PROFILE.disable)
    await stopped.wait()
    await server.stop()


if __name__ == "__main__":
    event_loop = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else "asyncio"
    run(main(sys.argv[1]), event_loop=event_loop)
    if "--profile" in sys.argv:
        PROFILE.dump_stats(sys.argv[sys.argv.index("--profile") + 1])
