"""One worker against two: ``stelar serve --workers N`` on Redis, where the generator is not the limit.

The workload is requests that cost the server real CPU (bench/servers/cpu_app.py: about a
third of a millisecond of hashing per request, answered over WebSocket), so one load generator
asking through 50 connections spends a small fraction of what the servers spend, and the
figure says how the workers share the work, not how fast the generator is. Every worker is a
process of its own on the port (SO_REUSEPORT spreads the 50 connections over them) and joins
the others through a redis-server this script starts on a free port.

    bench/.venv/bin/python bench/workers.py [--quick]   # prints the table; bench/run writes it
                                                        # into bench/RESULTS.md

This machine has two cores: two workers and the generator share them (nothing is pinned).
Loopback only; each run is bounded and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare import write_section
from loadgen import Target, WebSocketPeer, Window, ack_round_trips

from stelar_core.loadgen.scenarios import cpu_seconds
from stelar_core.testing.processes import free_port
from stelar_redis.testing import RedisProcess

HERE = Path(__file__).resolve().parent
CLIENTS = 50
STARTUP_TIMEOUT = 30.0


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` on 127.0.0.1 (one per worker, with SO_REUSEPORT)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1] == f"0100007F:{port:04X}" and row[3] == "0A")


def workers_of(supervisor: int) -> list[int]:
    """The supervisor's children (of any of its threads)."""
    pids = []
    for thread in os.listdir(f"/proc/{supervisor}/task"):
        with open(f"/proc/{supervisor}/task/{thread}/children") as children:
            pids += [int(pid) for pid in children.read().split()]
    return pids


def measure(workers: int, redis_url: str, per_client: int) -> dict[str, float]:
    """Round trips/s with ``workers`` workers, and each process's CPU over the measured part."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("stelar")),
        "serve",
        "cpu_app:app",
        f"--workers={workers}",
        "--broker=redis",
        f"--redis-url={redis_url}",
        "--transport=ws",
        f"--port={port}",
        "--log-level=warning",
    ]
    supervisor = subprocess.Popen(command, cwd=HERE / "servers", stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while listening_sockets(port) < workers:  # every worker listens: none is left out
            if supervisor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not start listening on {port}")
            time.sleep(0.05)
        # (--workers 1 serves in the command's own process, on the same broker)
        pids = workers_of(supervisor.pid) if workers > 1 else [supervisor.pid]
        if len(pids) != workers:
            raise RuntimeError(f"{workers} workers asked for, {len(pids)} running")
        before = [cpu_seconds(pid) for pid in pids]
        result = asyncio.run(ack_round_trips(WebSocketPeer, Target(port), Window(), CLIENTS, per_client))
        wall = result["seconds"]
        for n, (pid, began) in enumerate(zip(pids, before, strict=True)):
            # (over the whole run, connecting included: the share of each worker is what counts)
            result[f"worker {n + 1}"] = (cpu_seconds(pid) - began) / wall
        return result
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is kept")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    per_client = 10 if args.quick else 100
    lines = [
        f"### Workers: one against two, {CLIENTS} WebSocket clients asking {per_client} CPU-bound "
        "requests each",
        "",
        "`stelar serve cpu_app:app --workers N --broker redis` (bench/servers/cpu_app.py: ~0.3 ms of",
        "hashing per request); two cores, shared by the workers and the generator. CPU in cores",
        f"(1.0 = one core busy); medians of {1 if args.quick else args.repeat}. "
        "`bench/.venv/bin/python bench/workers.py`.",
        "",
        "| workers | requests/s | speed-up | p50 µs | p99 µs | generator CPU | workers' CPU |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    redis = RedisProcess()
    redis.start()
    try:
        rates: dict[int, float] = {}
        for workers in (1, 2):
            runs = [measure(workers, redis.url, per_client) for _ in range(1 if args.quick else args.repeat)]
            middle = sorted(runs, key=lambda run: run["rate"])[len(runs) // 2]
            rates[workers] = statistics.median(run["rate"] for run in runs)
            shares = " · ".join(f"{middle[f'worker {n + 1}']:.2f}" for n in range(workers))
            lines.append(
                f"| {workers} | {rates[workers]:,.0f} | {rates[workers] / rates[1]:.2f}x | "
                f"{middle['p50']:,.0f} | {middle['p99']:,.0f} | {middle['generator_cpu']:.2f} | {shares} |"
            )
            print(lines[-1], flush=True)
    finally:
        redis.stop()
    print("\n".join(lines))
    if not args.no_write:
        write_section("workers", lines)


if __name__ == "__main__":
    main()
