"""stelar and its peers, side by side, in one run on this machine: writes bench/RESULTS.md.

    bench/run                      # sets up bench/.venv and bench/node, then runs this (~25 min)
    bench/run --quick              # a smoke run: small counts, one repetition
    bench/run --only fan-out --systems stelar,websockets

Each measurement starts a fresh server process pinned to CPU 0; the load generator (loadgen.py,
raw sockets, counting frames by their first bytes) runs on CPU 1 and checks that nothing is lost
or duplicated. Medians of ``--repeat`` runs with min-max; both processes' CPU use is reported so
a saturated generator shows. The targets of issue 8 are checked as ratios of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import pstats
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import attrs
from loadgen import (
    LengthPrefixedPeer,
    Peer,
    SocketIOPeer,
    WebSocketPeer,
    Window,
    ack_round_trips,
    churn,
    fan_out,
    idle_memory,
    local,
    process_memory,
)

HERE = Path(__file__).resolve().parent
NODE = HERE / "node"
STELAR = str(HERE / "servers" / "stelar_relay.py")


@attrs.frozen
class System:
    name: str
    argv: tuple[str, ...]
    peer: type[Peer]


def write_section(name: str, lines: list[str], results: Path = HERE / "RESULTS.md") -> None:
    """Put ``lines`` between the ``name`` markers of RESULTS.md (appended the first time): the
    sections bench/run's later scripts (cluster.py, tls.py) add after compare.py's tables."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    text = results.read_text() if results.exists() else ""
    block = "\n".join([begin, *lines, end])
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    results.write_text(text)


def python(script: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, str(HERE / "servers" / script), *args)


def systems() -> list[System]:
    found = [
        System("stelar ws", python("stelar_relay.py", "ws", "asyncio"), WebSocketPeer),
        System("stelar ws, uvloop", python("stelar_relay.py", "ws", "uvloop"), WebSocketPeer),
        System("bare websockets", python("websockets_relay.py"), WebSocketPeer),
        System("picows", python("picows_relay.py"), WebSocketPeer),
        System("picows, uvloop", python("picows_relay.py", "uvloop"), WebSocketPeer),
        System("python-socketio", python("socketio_relay.py"), SocketIOPeer),
        System("stelar ws via ASGI (uvicorn)", python("stelar_asgi_relay.py"), WebSocketPeer),
        System("python-socketio ASGI (uvicorn)", python("socketio_relay.py", "--asgi"), SocketIOPeer),
        System("stelar tcp", python("stelar_relay.py", "tcp", "asyncio"), LengthPrefixedPeer),
        System("stelar tcp, uvloop", python("stelar_relay.py", "tcp", "uvloop"), LengthPrefixedPeer),
        System("raw asyncio relay", python("raw_tcp_relay.py"), LengthPrefixedPeer),
        System("raw relay, uvloop", python("raw_tcp_relay.py", "uvloop"), LengthPrefixedPeer),
    ]
    node = shutil.which("node")
    if node and (NODE / "node_modules").is_dir():
        found[5:5] = [
            System("Node ws", (node, str(NODE / "ws_relay.js")), WebSocketPeer),
            System("Node socket.io", (node, str(NODE / "socketio_relay.js")), SocketIOPeer),
        ]
    return found


class ServerProcess:
    """A server in a fresh process on CPU 0; it prints "PORT <n>" once listening."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {0})
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"{argv} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.pid = self.process.pid

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


Scenario = Callable[[System, ServerProcess, Window], Awaitable[dict[str, float]]]


@attrs.frozen
class ScenarioSpec:
    name: str
    unit: str
    run: Scenario
    higher_is_better: bool = True


def scenarios(scale: float, idle_sizes: Sequence[int]) -> list[ScenarioSpec]:
    def n(count: int) -> int:
        return max(1, int(count * scale))

    specs = [
        ScenarioSpec(
            "fan-out, 1,000 members, burst",
            "deliveries/s",
            lambda s, p, w: fan_out(s.peer, local(p.port), w, 1000, n(500), paced=False),
        ),
        ScenarioSpec(
            "fan-out, 100 members, burst",
            "deliveries/s",
            lambda s, p, w: fan_out(s.peer, local(p.port), w, 100, n(2000), paced=False),
        ),
        ScenarioSpec(
            "fan-out, 1,000 members, paced",
            "deliveries/s",
            lambda s, p, w: fan_out(s.peer, local(p.port), w, 1000, n(100), paced=True),
        ),
        ScenarioSpec(
            "ACK round trips, 1 client",
            "round trips/s",
            lambda s, p, w: ack_round_trips(s.peer, local(p.port), w, 1, n(10_000)),
        ),
        ScenarioSpec(
            "ACK round trips, 50 clients",
            "round trips/s",
            lambda s, p, w: ack_round_trips(s.peer, local(p.port), w, 50, n(1000)),
        ),
        ScenarioSpec("churn", "connections/s", lambda s, p, w: churn(s.peer, local(p.port), w, n(3000), 50)),
    ]
    for size in idle_sizes:
        specs.append(
            ScenarioSpec(
                f"idle memory, {size:,} connections",
                "RSS bytes per connection",
                lambda s, p, w, size=size: idle_memory(s.peer, local(p.port), w, size, process_memory(p.pid)),
                higher_is_better=False,
            )
        )
    return specs


async def measure(system: System, scenario: ScenarioSpec, profiled: bool = False) -> dict[str, float]:
    server = ServerProcess(system.argv)
    try:
        return await scenario.run(system, server, Window(server.pid, profiled))
    finally:
        server.stop()


Results = dict[str, dict[str, dict[str, float]]]  # scenario -> system -> figures


def run_all(chosen: list[System], specs: list[ScenarioSpec], repeat: int, log: Path) -> Results:
    results: Results = {}
    for spec in specs:
        results[spec.name] = {}
        for system in chosen:
            began = time.perf_counter()
            runs = []
            for _ in range(repeat):
                try:
                    runs.append(asyncio.run(measure(system, spec)))
                except Exception as exc:  # one system failing a scenario is a result, not a crash
                    print(f"  {spec.name} on {system.name} failed: {exc!r}", file=sys.stderr, flush=True)
            if not runs:
                continue
            merged = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            merged["min"] = min(run["rate"] for run in runs)
            merged["max"] = max(run["rate"] for run in runs)
            merged["runs"] = len(runs)
            results[spec.name][system.name] = merged
            print(
                f"  {spec.name:34} {system.name:20} {merged['rate']:>12,.0f} "
                f"({merged['seconds']:.2f} s measured, {time.perf_counter() - began:.1f} s in all)",
                flush=True,
            )
            log.write_text(json.dumps(results, indent=1))
    return results


# ------------------------------------------------------------------------------------ report


def cpu_per_op(figures: dict[str, float]) -> float:
    """The server's CPU µs per delivery, round trip or connection: what the server itself pays,
    even where the generator is the bottleneck."""
    return figures["server_cpu"] / figures["rate"] * 1e6


def scenario_table(spec: ScenarioSpec, figures: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        f"### {spec.name} ({spec.unit}, {'higher' if spec.higher_is_better else 'lower'} is better)",
        "",
        "| system | median | min-max | p50 / p99 µs | CPU server · generator | server CPU µs per op |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for system, r in figures.items():
        latency = f"{r['p50']:,.0f} / {r['p99']:,.0f}" if "p50" in r else ""
        spread = f"{r['min']:,.0f}-{r['max']:,.0f}"
        cpu = f"{r['server_cpu']:.0%} · {r['generator_cpu']:.0%}"
        per_op = f"{cpu_per_op(r):.1f}" if spec.higher_is_better else ""
        lines.append(f"| {system} | {r['rate']:,.0f} | {spread} | {latency} | {cpu} | {per_op} |")
    return [*lines, ""]


@attrs.frozen
class Target:
    """``system`` / ``reference`` at least ``ratio`` (or an absolute bound when reference is None).
    ``per_op``: compare the server CPU per operation instead of the rate (the reference's CPU per
    operation over the system's must be at least ``ratio``: 1.0 = no dearer); ``memory``: compare
    bytes (lower is better: the reference's over the system's)."""

    label: str
    scenario: str
    system: str
    reference: str | None
    ratio: float  # the least ratio, or the most bytes for an absolute bound
    per_op: bool = False
    memory: bool = False


def targets() -> list[Target]:
    found = []
    for loop in ("", ", uvloop"):
        ws, tcp = f"stelar ws{loop}", f"stelar tcp{loop}"
        for kind in ("burst", "paced"):
            scenario = f"fan-out, 1,000 members, {kind}"
            found += [
                Target(f"WS fan-out ({kind}) ≥ 2x bare websockets", scenario, ws, "bare websockets", 2.0),
                Target(f"WS fan-out ({kind}) ahead of Node ws", scenario, ws, "Node ws", 1.0),
                Target(f"TCP fan-out ({kind}) ≥ 1.5x raw relay", scenario, tcp, "raw asyncio relay", 1.5),
                Target(f"fan-out ({kind}) ≥ 8x python-socketio", scenario, ws, "python-socketio", 8.0),
            ]
        found += [
            Target(
                "WS ACK, 50 clients ≥ 1.2x bare websockets",
                "ACK round trips, 50 clients",
                ws,
                "bare websockets",
                1.2,
            ),
            Target(
                "TCP ACK, 50 clients ≥ 0.8x raw echo",
                "ACK round trips, 50 clients",
                tcp,
                "raw asyncio relay",
                0.8,
            ),
            Target("WS churn ≥ bare websockets", "churn", ws, "bare websockets", 1.0),
            Target("WS idle memory ≤ 8 KB (10,000)", "idle memory, 10,000 connections", ws, None, 8192),
            Target("TCP idle memory ≤ 4 KB (10,000)", "idle memory, 10,000 connections", tcp, None, 4096),
        ]
    # Issue 18: cheapest per request and per connection, not only per broadcast.
    ack50, idle = "ACK round trips, 50 clients", "idle memory, 10,000 connections"
    for loop, picows in (("", "picows"), (", uvloop", "picows, uvloop")):
        ws, tcp = f"stelar ws{loop}", f"stelar tcp{loop}"
        found += [
            Target("WS ACK CPU per round trip ≤ Node ws's", ack50, ws, "Node ws", 1.0, per_op=True),
            Target("WS ACK CPU per round trip ≤ picows's", ack50, ws, picows, 1.0, per_op=True),
            Target("WS churn ≥ picows", "churn", ws, picows, 1.0),
            Target("TCP churn ≥ raw relay", "churn", tcp, "raw asyncio relay", 1.0),
            Target("WS idle memory ≤ Node ws's (10,000)", idle, ws, "Node ws", 1.0, memory=True),
            Target("WS fan-out (burst) ≥ 2x picows", "fan-out, 1,000 members, burst", ws, picows, 2.0),
        ]
    asgi, socketio_asgi = "stelar ws via ASGI (uvicorn)", "python-socketio ASGI (uvicorn)"
    for scenario in (
        "fan-out, 1,000 members, burst",
        "fan-out, 1,000 members, paced",
        "ACK round trips, 1 client",
        "ACK round trips, 50 clients",
        "churn",
    ):
        found.append(
            Target(f"ASGI {scenario} ahead of python-socketio's ASGI app", scenario, asgi, socketio_asgi, 1.0)
        )
    return found


def target_table(results: Results) -> list[str]:
    lines = [
        "| target | stelar | reference | ratio | met | server CPU µs per op (stelar · reference) |",
        "|---|---:|---:|---:|:---:|---|",
    ]
    for target in targets():
        figures = results.get(target.scenario, {})
        mine = figures.get(target.system)
        if mine is None:
            continue
        if target.reference is None:
            met = "yes" if mine["rate"] <= target.ratio else "NO"
            lines.append(f"| {target.label} ({target.system}) | {mine['rate']:,.0f} B | - | - | {met} | |")
            continue
        theirs = figures.get(target.reference)
        if theirs is None:
            continue
        if target.per_op:
            ratio = cpu_per_op(theirs) / cpu_per_op(mine)
        elif target.memory:
            ratio = theirs["rate"] / mine["rate"]
        else:
            ratio = mine["rate"] / theirs["rate"]
        unit = " B" if target.memory else ""
        cpu = "" if target.memory else f"{cpu_per_op(mine):.1f} · {cpu_per_op(theirs):.1f}"
        lines.append(
            f"| {target.label} ({target.system}) | {mine['rate']:,.0f}{unit} | {theirs['rate']:,.0f}{unit} "
            f"| {ratio:.2f}x | {'yes' if ratio >= target.ratio else 'NO'} | {cpu} |"
        )
    return [*lines, ""]


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def node_versions() -> str:
    node = shutil.which("node")
    if not node or not (NODE / "node_modules").is_dir():
        return "Node peers not run (no node, or bench/node not installed)"
    own = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    packages = [
        f"{name} {json.loads((NODE / 'node_modules' / name / 'package.json').read_text())['version']}"
        for name in ("ws", "socket.io")
    ]
    return f"Node {own}, " + ", ".join(packages)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), {platform.machine()}, Linux {platform.release()}"


def hub_table() -> list[str]:
    """bench/hub.py's table (the in-memory hub), run as it is, for the no-regression check."""
    done = subprocess.run(
        [sys.executable, str(HERE / "hub.py")], capture_output=True, text=True, timeout=300, check=True
    )
    lines = done.stdout.splitlines()
    first_table = next(n for n, line in enumerate(lines) if line.startswith("|"))
    return [*lines[first_table:], ""]


def profile(scenario: ScenarioSpec, transport: str, out: Path) -> list[str]:
    """A cProfile of stelar's server through one scenario: the top functions by own time.
    ``transport``: ws, tcp, or asgi (the WebSocket through uvicorn)."""
    stats_file = out / f"profile-{transport}.pstats"
    argv = (
        python("stelar_asgi_relay.py", "--profile", str(stats_file))
        if transport == "asgi"
        else (sys.executable, STELAR, transport, "asyncio", "--profile", str(stats_file))
    )
    system = System(f"stelar {transport}", argv, LengthPrefixedPeer if transport == "tcp" else WebSocketPeer)
    asyncio.run(measure(system, scenario, profiled=True))
    stats = pstats.Stats(str(stats_file))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:15]  # type: ignore[attr-defined]
    lines = [
        f"#### stelar {transport}, {scenario.name}: top functions by own time "
        f"(of {total:.2f} s profiled, the measured part only)",
        "",
        "| function | calls | own s | own % | cumulative s |",
        "|---|---:|---:|---:|---:|",
    ]
    for (file, line, name), (_, calls, own, cumulative, _) in rows:
        where = f"{Path(file).name}:{line} {name}" if line else name
        lines.append(f"| `{where}` | {calls:,} | {own:.3f} | {own / total:.1%} | {cumulative:.3f} |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small counts, one repetition: a smoke run")
    parser.add_argument("--only", default="", help="scenarios whose name contains this")
    parser.add_argument("--systems", default="", help="comma-separated parts of system names to run")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers inherit it
    os.sched_setaffinity(0, {1})
    idle_sizes = [100, 1000] if args.quick else [1000, min(10_000, hard - 200)]  # per process
    repeat = 1 if args.quick else args.repeat
    chosen = [s for s in systems() if not args.systems or any(p in s.name for p in args.systems.split(","))]
    specs = [s for s in scenarios(0.1 if args.quick else 1.0, idle_sizes) if args.only in s.name]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    print(f"{len(chosen)} systems x {len(specs)} scenarios x {repeat}; raw figures in {out}", flush=True)
    results = run_all(chosen, specs, repeat, out / "results.json")

    report = [
        "# stelar and its peers, measured side by side",
        "",
        f"Produced by `bench/run{' --quick' if args.quick else ''}` (bench/compare.py) on "
        f"{datetime.date.today().isoformat()}, in {(time.perf_counter() - started) / 60:.0f} minutes.",
        "",
        f"- Machine: {machine()}; servers pinned to CPU 0, the load generator to CPU 1.",
        f"- Python {platform.python_version()}; stelar-core {version('stelar-core')}, websockets "
        f"{version('websockets')}, uvloop {version('uvloop')}, python-socketio {version('python-socketio')}, "
        f"aiohttp {version('aiohttp')}; {node_versions()}.",
        f"- Medians of {repeat} runs, each on a fresh server process, with min-max. ~100-byte JSON "
        "messages. CPU is each process's CPU time over the measured part of the scenario (100% = one "
        "core busy: a generator near 100% would be the bottleneck).",
        "- Systems: stelar on asyncio's loop and on uvloop; bare `websockets` with its `broadcast()`; "
        "Node `ws`; python-socketio on aiohttp and Node socket.io (WebSocket transport only); a raw "
        "asyncio length-prefixed relay writing once per delivery, on asyncio and on uvloop. All do "
        "the same work: answer the connect, join one room, echo ACK requests, relay an event to "
        "the room.",
        "- Fan-out *burst*: all events published in one write, the deliveries/s until the last "
        "arrives. *Paced*: the next event is published when every member has the previous one "
        "(p50/p99 is that delivery time).",
        "",
        "## Targets (issue 8), as ratios of this run",
        "",
        *target_table(results),
        "## Scenarios",
        "",
    ]
    for spec in specs:
        if results.get(spec.name):
            report += scenario_table(spec, results[spec.name])
    if not args.quick and not args.only and not args.systems:
        report += ["## The in-memory hub (bench/hub.py, no regression)", "", *hub_table()]
    if not args.no_profile:
        report += ["## Where stelar's server spends its time (cProfile, asyncio loop)", ""]
        by_name = {spec.name: spec for spec in scenarios(0.1 if args.quick else 1.0, [])}
        for transport in ("ws", "tcp", "asgi"):
            for name in ("fan-out, 1,000 members, burst", "ACK round trips, 50 clients"):
                report += profile(by_name[name], transport, out)
    Path(args.output).write_text("\n".join(report))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
