"""What tracing costs: fan-out and ACK round trips with stelar-otel off, and on with 1% of
traces sampled, by the SDK's sampler or by stelar-otel's head decision (``sample_ratio``), and
with all of them (for scale).

    bench/.venv/bin/python bench/tracing.py      # about 4 minutes; --repeat N, --quick
    bench/.venv/bin/python bench/tracing.py --hub-only

Two tables. Over sockets: a stelar server process per measurement (bench/servers/stelar_relay.py
with ``--otel``, pinned to CPU 0) and the load generator of bench/compare.py; the figure is the
server's CPU time per operation, which is what tracing adds to. In process: bench/hub.py's
scenarios over the in-memory transport, where no socket cost dilutes it (the worst case). Spans
go through a BatchSpanProcessor to an exporter that drops them, as a collector that is never
slow would. The modes take turns within each repetition, so that the machine's drift touches
them alike; medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

from compare import ServerProcess, python, write_section
from hub import ack_round_trips as hub_round_trips
from hub import fanout_per_second
from loadgen import LengthPrefixedPeer, Peer, WebSocketPeer, Window, ack_round_trips, fan_out, local
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

# mode: (the SDK's sampling ratio, stelar-otel's sample_ratio), or None for tracing off.
MODES: dict[str, tuple[float, float] | None] = {
    "off": None,
    "SDK sampler 1%": (0.01, 1.0),
    "sample_ratio 1%": (1.0, 0.01),
    "all sampled": (1.0, 1.0),
}


class Dropping(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


class Switchable(Sampler):
    """The process's one sampler, whose ratio each mode sets (a provider is set once)."""

    def __init__(self) -> None:
        self.inner: Sampler = ParentBased(TraceIdRatioBased(1.0))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "Switchable"


def table(
    title: list[str], rows: dict[str, dict[str, list[float]]], unit: str, lower_is_better: bool
) -> list[str]:
    """Medians per mode, each with its change from ``off``."""
    lines = [*title, "", f"| {unit} | " + " | ".join(MODES) + " |", "|---|" + "---:|" * len(MODES)]
    for name, by_mode in rows.items():
        medians = [statistics.median(by_mode[mode]) for mode in MODES]
        base = medians[0]
        cells = [f"{base:,.2f}" if lower_is_better else f"{base:,.0f}"]
        for value in medians[1:]:
            shown = f"{value:,.2f}" if lower_is_better else f"{value:,.0f}"
            cells.append(f"{shown} ({value / base - 1:+.1%})")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def over_sockets(repeat: int, quick: bool) -> list[str]:
    """Server CPU µs per operation, a fresh server process per measurement."""
    scale = 0.1 if quick else 1.0
    n = lambda base: max(1, int(base * scale))  # noqa: E731
    scenarios: dict[str, tuple[Callable[..., Any], int]] = {
        "ACK round trip (50 clients)": (
            lambda peer, target, window: ack_round_trips(peer, target, window, 50, n(1000)),
            50 * n(1000),
        ),
        "fan-out delivery (1,000 members)": (
            lambda peer, target, window: fan_out(peer, target, window, 1000, n(300), paced=False),
            1000 * n(300),
        ),
    }
    transports: dict[str, type[Peer]] = {"tcp": LengthPrefixedPeer, "ws": WebSocketPeer}
    rows: dict[str, dict[str, list[float]]] = {}
    for _ in range(repeat):
        for transport, peer in transports.items():
            for scenario_name, (scenario, operations) in scenarios.items():
                for mode_name, mode in MODES.items():
                    otel = () if mode is None else ("--otel", *map(str, mode))
                    server = ServerProcess(python("stelar_relay.py", transport, "asyncio", *otel))
                    try:
                        result = asyncio.run(scenario(peer, local(server.port), Window(server.pid)))
                    finally:
                        server.stop()
                    cpu = result["server_cpu"] * result["seconds"] / operations * 1e6
                    rows.setdefault(f"stelar {transport}: {scenario_name}", {}).setdefault(
                        mode_name, []
                    ).append(cpu)
                    print(
                        f"  {transport} {scenario_name} {mode_name}: {cpu:.2f} µs",
                        file=sys.stderr,
                        flush=True,
                    )
    title = [
        f"### Tracing: server CPU µs per operation over loopback sockets (asyncio loop), medians of {repeat}",
        "",
        "stelar-otel off, and on with 1% of traces sampled by the SDK's sampler or by stelar-otel's",
        "`sample_ratio`, and with all sampled; spans batched to an exporter that drops them.",
        "`bench/.venv/bin/python bench/tracing.py`.",
    ]
    return table(title, rows, "server CPU µs per", lower_is_better=True)


def in_process(repeat: int, quick: bool) -> list[str]:
    """bench/hub.py's scenarios over the in-memory transport, in this process."""
    scale = 0.1 if quick else 1.0
    n = lambda base: max(1, int(base * scale))  # noqa: E731
    sampler = Switchable()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(Dropping(), max_queue_size=100_000))
    trace.set_tracer_provider(provider)
    scenarios = {
        "fan-out deliveries/s (1,000 members)": lambda o: fanout_per_second(1000, n(200), **o),
        "ACK round trips/s (1 client)": lambda o: hub_round_trips(1, n(20_000), **o),
        "ACK round trips/s (50 clients)": lambda o: hub_round_trips(50, n(1_000), **o),
    }
    rows: dict[str, dict[str, list[float]]] = {}
    for _ in range(repeat):
        for scenario_name, scenario in scenarios.items():
            for mode_name, mode in MODES.items():
                otel: dict[str, Any] = {"enabled": mode is not None, "metrics": False}
                if mode is not None:
                    sdk_ratio, otel["sample_ratio"] = mode
                    sampler.inner = ParentBased(TraceIdRatioBased(sdk_ratio))
                rate = asyncio.run(scenario({"otel": otel}))
                rows.setdefault(scenario_name, {}).setdefault(mode_name, []).append(rate)
    provider.shutdown()
    title = [
        f"### Tracing: the hub in process (in-memory transport, no socket cost), medians of {repeat}",
        "",
        "`bench/.venv/bin/python bench/tracing.py`: the worst case, where tracing's share is largest.",
    ]
    return table(title, rows, "per second", lower_is_better=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages, one repetition")
    parser.add_argument("--hub-only", action="store_true", help="only the in-process table")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    lines = [] if args.hub_only else [*over_sockets(repeat, args.quick), ""]
    lines += in_process(repeat, args.quick)
    print("\n".join(lines))
    if not args.no_write and not args.hub_only and not args.quick:
        write_section("tracing", lines)


if __name__ == "__main__":
    main()
