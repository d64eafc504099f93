"""The presence scenario of bench/run (issue 27): what presence costs a room under churn.

A room of N WebSocket members (N = 1,000 and 10,000) sees churn: every second, 100 newcomers join
and the 100 who came the second before leave. Measured over the churn: the presence frames the
server sent per second (its ``presence_frames`` counter), and its CPU seconds per second (from
``/proc``), beside the same room without presence. The target: presence traffic grows with the
churn times N per interval at most (one batched diff per interval to each member), never with N
times the number of joins and leaves.

    bench/.venv/bin/python bench/presence.py [--quick]   # prints the table; bench/run writes it
                                                           # into bench/RESULTS.md

Loopback only; every scenario is bounded and stops by itself. The "Redis" rows run the same node
with the Redis broker (cluster-wide presence) and count the Redis commands per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from cluster import RedisServer
from compare import ServerProcess, python, write_section
from loadgen import WebSocketPeer, close_all, local, open_peers

from stelar_core import StelarClient

CHURN = 100  # joins and leaves per second

NOTE = """The server process is pinned to CPU 0, as in the rest of this benchmark; the load generator runs
on the other core. Members are raw WebSocket peers of the load generator; every second 100 new
ones join the room and the 100 who came the second before leave (their leaves are told after
`presence_grace`, 5 s). Presence frames are what the server sent (snapshots to newcomers and
batched diffs, `presence_interval` 1 s); CPU is the server process's user+system time per second
of churn. With the Redis broker the node shares its presence through a Redis of its own (its
heartbeats slowed, so that the commands counted are presence's: the writes of joins and leaves,
and one read per interval). `bench/.venv/bin/python bench/presence.py`."""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def presence_frames(port: int) -> int:
    async with StelarClient(f"ws://127.0.0.1:{port}/", reconnection=False) as client:
        counters = await client.request("stats", timeout=30)
    return int(counters.get("presence_frames", 0))


async def churn(
    port: int, pid: int, members: int, seconds: int, redis: RedisServer | None
) -> dict[str, float]:
    target = local(port)
    resident = await open_peers(WebSocketPeer, target, members, join=True)
    before_frames, before_cpu = await presence_frames(port), cpu_seconds(pid)
    before_calls = 0 if redis is None else redis.calls()
    started = time.perf_counter()
    previous: list = []
    for _ in range(seconds):
        tick = time.perf_counter()
        newcomers = await open_peers(WebSocketPeer, target, CHURN, join=True)
        await close_all(previous)
        previous = newcomers
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))  # a benchmark's pace
    elapsed = time.perf_counter() - started
    frames, cpu = await presence_frames(port) - before_frames, cpu_seconds(pid) - before_cpu
    calls = 0 if redis is None else redis.calls() - before_calls
    await close_all([*previous, *resident])
    return {
        "frames": frames / elapsed,
        "cpu": cpu / elapsed,
        "per_member": frames / elapsed / members,
        "redis": calls / elapsed,
    }


def measure(members: int, seconds: int, presence: bool, redis: RedisServer | None) -> dict[str, float]:
    argv = list(python("stelar_relay.py", "ws", "asyncio"))
    if presence:
        argv.append("--presence")
    if redis is not None:
        argv += ["--redis", redis.url, f"presence{members}"]
    server = ServerProcess(argv)
    try:
        return asyncio.run(churn(server.port, server.pid, members, seconds, redis))
    finally:
        server.stop()


def table(results: dict[tuple[int, str], dict[str, float]], seconds: int) -> list[str]:
    lines = [
        f"### Presence: a room under churn of {CHURN} joins and {CHURN} leaves per second, {seconds} s",
        "",
        *NOTE.splitlines(),
        "",
        "| members | room | presence frames/s | per member per second | server CPU s/s | Redis commands/s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for (members, kind), figures in results.items():
        rate, per_member, cpu = figures["frames"], figures["per_member"], figures["cpu"]
        calls = f"{figures['redis']:,.0f}" if "Redis" in kind else "-"
        lines.append(f"| {members:,} | {kind} | {rate:,.0f} | {per_member:.2f} | {cpu:.3f} | {calls} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for a smoke run")
    args = parser.parse_args()
    sizes, seconds = ((200, 1000), 4) if args.quick else ((1000, 10_000), 10)
    results = {}
    redis = RedisServer()
    try:
        for members in sizes:
            results[(members, "no presence")] = measure(members, seconds, False, None)
            results[(members, "presence")] = measure(members, seconds, True, None)
            results[(members, "presence, Redis broker")] = measure(members, seconds, True, redis)
    finally:
        redis.stop()
    lines = table(results, seconds)
    print("\n".join(lines))
    write_section("presence", lines)


if __name__ == "__main__":
    main()
