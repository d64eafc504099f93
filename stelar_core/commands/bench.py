"""``stelar bench URL --scenario fanout|ack|churn|idle``: load a deployment and print its figures.

The scenarios are ``bench/``'s own (``stelar_core.loadgen``): the same peers, the same timing, so
the figures agree with ``bench/RESULTS.md`` for the same scenario and server. The server must
relay ``--event`` (default ``fan``) to ``--room`` and answer ``--request`` (default ``echo``)
with its data, as the relay app of ``stelar serve`` does. Every run is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from stelar_core.errors import ConfigError
from stelar_core.loadgen import LengthPrefixedPeer, Progress, Target, WebSocketPeer, Window
from stelar_core.loadgen import scenarios as play
from stelar_core.loadgen.peers import Peer
from stelar_core.tls import client_context, is_secure
from stelar_core.transports.base import ConnectOptions

# Each scenario's main figure (its ``rate``).
HEADLINES = {
    "fanout": "deliveries/s",
    "ack": "round trips/s",
    "churn": "connections/s",
    "idle": "bytes per idle connection",
}
SCENARIOS = tuple(HEADLINES)
# Upper bounds of the counts one run may ask for: a load generator, not a flood.
MAX_PEERS = 50_000
MAX_MESSAGES = 1_000_000
BAR_WIDTH = 30


def render_bar(progress: Progress, width: int = BAR_WIDTH) -> str:
    """``[#########.....] 60% deliveries 60,000/100,000``."""
    done, total = progress.current(), max(progress.total, 1)
    filled = min(width, width * done // total)
    percent = min(100, 100 * done // total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {progress.phase} {done:,}/{total:,}"


def table(scenario: str, url: str, figures: dict[str, float]) -> list[str]:
    """The result as a Markdown table."""
    rows = [(HEADLINES[scenario], f"{figures['rate']:,.0f}")]
    if "p50" in figures:
        rows += [("p50 µs", f"{figures['p50']:,.0f}"), ("p99 µs", f"{figures['p99']:,.0f}")]
    rows.append(("seconds", f"{figures['seconds']:.2f}"))
    rows.append(("load generator CPU (1.0 = a core)", f"{figures['generator_cpu']:.2f}"))
    if "server_cpu" in figures:
        rows.append(("server CPU (1.0 = a core)", f"{figures['server_cpu']:.2f}"))
    lines = [f"stelar bench {url} --scenario {scenario}", "", "| figure | value |", "|---|---:|"]
    return lines + [f"| {name} | {value} |" for name, value in rows]


def target_of(args: argparse.Namespace) -> tuple[type[Peer], Target]:
    parts = urlsplit(args.url)
    kinds: dict[str, type[Peer]] = {
        "ws": WebSocketPeer,
        "wss": WebSocketPeer,
        "tcp": LengthPrefixedPeer,
        "tcps": LengthPrefixedPeer,
    }
    if parts.scheme not in kinds or not parts.hostname or parts.port is None:
        raise ConfigError(
            f"expected ws://, wss://, tcp:// or tcps:// with a host and a port, got {args.url!r}"
        )
    tls = None
    if is_secure(args.url):
        tls = client_context(
            args.url, ConnectOptions(ca_file=args.ca_file, reject_unauthorized=not args.insecure)
        )
    path = (
        (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme.startswith("ws")
        else None
    )
    return kinds[parts.scheme], Target(
        parts.port, parts.hostname, path, tls, room=args.room, event=args.event, request=args.request
    )


def memory_reader(args: argparse.Namespace) -> Callable[[], Awaitable[int]]:
    """How the idle scenario reads the server's resident memory: from its process, or from
    its health route (``memory_usage.rss``)."""
    if args.server_pid is not None:
        return play.process_memory(args.server_pid)
    health = args.health
    if health is None:
        parts = urlsplit(args.url)
        if not parts.scheme.startswith("ws"):
            raise ConfigError(
                "--scenario idle needs the server's memory: give --health URL or --server-pid PID"
            )
        scheme = "https" if parts.scheme == "wss" else "http"
        health = urlunsplit((scheme, parts.netloc, "/health", "", ""))
    context = (
        client_context(health, ConnectOptions(ca_file=args.ca_file)) if health.startswith("https") else None
    )

    def fetch() -> int:
        with urllib.request.urlopen(health, timeout=10, context=context) as response:
            return int(json.loads(response.read())["memory_usage"]["rss"])

    async def read() -> int:
        return await asyncio.to_thread(fetch)

    return read


async def run_scenario(args: argparse.Namespace, progress: Progress) -> dict[str, float]:
    kind, target = target_of(args)
    window = Window(args.server_pid)
    if args.scenario == "fanout":
        return await play.fan_out(
            kind,
            target,
            window,
            args.members,
            args.messages,
            args.paced,
            publisher_joins=True,
            progress=progress,
        )
    if args.scenario == "ack":
        return await play.ack_round_trips(kind, target, window, args.clients, args.requests, progress)
    if args.scenario == "churn":
        return await play.churn(kind, target, window, args.cycles, args.concurrency, progress)
    return await play.idle_memory(kind, target, window, args.connections, memory_reader(args), progress)


async def with_progress_bar(
    work: Awaitable[dict[str, float]], progress: Progress, out: TextIO
) -> dict[str, float]:
    """Run ``work``, redrawing the bar on ``out`` every 0.2 s while it runs (a terminal only)."""
    task = asyncio.ensure_future(work)
    drawing = out.isatty()
    while not task.done():
        if drawing:
            out.write("\r\x1b[K" + render_bar(progress))
            out.flush()
        await asyncio.wait([task], timeout=0.2)
    if drawing:
        out.write("\r\x1b[K")
        out.flush()
    return task.result()


def explain(error: BaseException) -> str:
    """A failure in a sentence; a refusal says which limit most likely refused."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if " 429 " in text:
        return f"the server refused a connection ({text}): its per-IP limit, max_connections_per_ip?"
    if " 503 " in text:
        return f"the server refused a connection ({text}): max_connections, or it is stopping?"
    if "rate_limited" in text or "rate limit" in text:
        return (
            f"{text}: the server's rate limit is below this load; for stelar serve, pass "
            "--rate-limit off (or --rate-limit N/SECONDS above this load), or set rate_limit / "
            "event_rate_limits in your server's options"
        )
    return text


def _count(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected 1 to {limit:,}, got {value}")
        return value

    return parse


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "bench",
        help="load a server and print its figures (fan-out, ACK latency, churn, idle memory)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("url", help="ws://, wss://, tcp:// or tcps:// URL of the server")
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    peers, messages = _count(MAX_PEERS), _count(MAX_MESSAGES)
    parser.add_argument("--members", type=peers, default=1000, help="fanout: room members (default 1,000)")
    parser.add_argument(
        "--messages", type=messages, default=100, help="fanout: messages published (default 100)"
    )
    parser.add_argument("--paced", action="store_true", help="fanout: one message at a time, with p50/p99")
    parser.add_argument("--clients", type=peers, default=50, help="ack: clients asking at once (default 50)")
    parser.add_argument(
        "--requests", type=messages, default=200, help="ack: requests per client (default 200)"
    )
    parser.add_argument(
        "--cycles", type=messages, default=1000, help="churn: connections made (default 1,000)"
    )
    parser.add_argument("--concurrency", type=peers, default=50, help="churn: at a time (default 50)")
    parser.add_argument(
        "--connections", type=peers, default=1000, help="idle: connections held (default 1,000)"
    )
    parser.add_argument(
        "--health", help="idle: the server's health URL (default: /health on a ws:// URL's port)"
    )
    parser.add_argument(
        "--server-pid", type=int, help="the server's process, if on this machine: its CPU and memory"
    )
    parser.add_argument("--room", default="room", help="the room members join (default room)")
    parser.add_argument("--event", default="fan", help="the event published to the room (default fan)")
    parser.add_argument("--request", default="echo", help="the request the server echoes (default echo)")
    parser.add_argument("--ca-file", help="trust this CA for wss:// and tcps://")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    progress = Progress()
    started = time.perf_counter()
    try:
        figures = asyncio.run(with_progress_bar(run_scenario(args, progress), progress, sys.stderr))
    except (OSError, AssertionError, TimeoutError) as exc:
        seconds = time.perf_counter() - started
        print(f"stelar bench: {args.scenario} failed after {seconds:.1f} s: {explain(exc)}", file=sys.stderr)
        return 1
    print("\n".join(table(args.scenario, args.url, figures)))
    return 0
