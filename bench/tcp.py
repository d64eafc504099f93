"""stelar-tcp next to a bare asyncio length-prefixed relay, measured in the same run.

    .venv/bin/python bench/tcp.py            # ~1-2 minutes; --repeat N, --quick

Each system runs in a fresh server process pinned to CPU 0; this load generator runs on CPU 1,
counts frames by their type byte without decoding them, checks that nothing is lost, and
reports its own CPU time and the server's so a saturated generator is visible. The open-files
limit is raised to its hard limit for the idle-connection scenario. Loopback only; every loop
is bounded in count and time.

Scenarios: ACK round trips/s with p50/p99 latency (1 and 50 concurrent clients), room fan-out
deliveries/s (1,000 members), RSS growth per idle connection (5,000 connections).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEMS = {
    "stelar tcp": HERE / "servers" / "stelar_tcp_relay.py",
    "raw asyncio relay": HERE / "servers" / "raw_tcp_relay.py",
}
LENGTH = struct.Struct(">I")
MESSAGE = b'{"user":"ann","room":"general","text":"hello there, how is everyone doing today?","n":12345}'


def frame(kind: int, event: bytes, payload: bytes = b"", ack_id: int | None = None) -> bytes:
    body = bytes([kind]) + len(event).to_bytes(2, "big") + event
    if ack_id is not None:
        body += ack_id.to_bytes(4, "big")
    body += payload
    return LENGTH.pack(len(body)) + body


CONNECT = frame(6, b"", b'{"auth":{}}')
JOIN = frame(8, b"room")
REQUEST = frame(4, b"echo", MESSAGE, ack_id=1)
FAN = frame(0, b"fan", MESSAGE)
RELAYED, ANSWER, WELCOME, ROOM_ANSWER = 0, 5, 6, 8


class Peer(asyncio.Protocol):
    """Counts frames per type; ``waiter`` resolves when ``wanted`` frames of ``kind`` arrived."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.counts = [0] * 11
        self.kind = -1
        self.wanted = 0
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport):
        self.transport = transport

    def expect(self, kind: int, wanted: int) -> asyncio.Future[None]:
        self.kind, self.wanted = kind, wanted
        self.waiter = asyncio.get_running_loop().create_future()
        if self.counts[kind] >= wanted:
            self.waiter.set_result(None)
        return self.waiter

    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        offset, end = 0, len(buffer)
        counts = self.counts
        while end - offset >= 4:
            (size,) = LENGTH.unpack_from(buffer, offset)
            if end - offset - 4 < size:
                break
            counts[buffer[offset + 4]] += 1
            offset += 4 + size
        del buffer[:offset]
        if self.waiter is not None and counts[self.kind] >= self.wanted and not self.waiter.done():
            self.waiter.set_result(None)


async def open_peers(port: int, count: int, *, handshake: bool = True, join: bool = False) -> list[Peer]:
    loop = asyncio.get_running_loop()
    peers = []
    for start in range(0, count, 200):  # in batches, under the listen backlog
        batch = await asyncio.gather(
            *(loop.create_connection(Peer, "127.0.0.1", port) for _ in range(min(200, count - start)))
        )
        peers.extend(peer for _, peer in batch)
    if handshake:
        for peer in peers:
            peer.transport.write(CONNECT + (JOIN if join else b""))
        await asyncio.gather(*(peer.expect(ROOM_ANSWER if join else WELCOME, 1) for peer in peers))
    return peers


def close_all(peers: list[Peer]) -> None:
    for peer in peers:
        peer.transport.close()


async def ack_round_trips(port: int, clients: int, per_client: int) -> dict[str, float]:
    peers = await open_peers(port, clients)
    latencies: list[float] = []

    async def run(peer: Peer) -> None:
        for n in range(1, per_client + 1):
            started = time.perf_counter()
            peer.transport.write(REQUEST)
            await peer.expect(ANSWER, n)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(run(peer) for peer in peers)), 120)
    elapsed = time.perf_counter() - began
    close_all(peers)
    latencies.sort()
    return {
        "rate": clients * per_client / elapsed,
        "p50": latencies[len(latencies) // 2] * 1e6,
        "p99": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


async def fan_out(port: int, members: int, messages: int) -> dict[str, float]:
    peers = await open_peers(port, members, join=True)
    (publisher,) = await open_peers(port, 1)
    began = time.perf_counter()
    publisher.transport.write(FAN * messages)
    await asyncio.wait_for(asyncio.gather(*(peer.expect(RELAYED, messages) for peer in peers)), 120)
    elapsed = time.perf_counter() - began
    received = sum(peer.counts[RELAYED] for peer in peers)
    if received != members * messages:
        raise AssertionError(f"lost or duplicated deliveries: {received} != {members * messages}")
    close_all([*peers, publisher])
    return {"rate": members * messages / elapsed}


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def idle_memory(port: int, pid: int, connections: int) -> dict[str, float]:
    warm = await open_peers(port, 50)
    close_all(warm)
    await asyncio.sleep(0.5)  # let the server settle before the baseline reading
    before = rss(pid)
    peers = await open_peers(port, connections)
    await asyncio.sleep(0.5)  # idle means idle: let any lazy allocation happen
    grown = rss(pid) - before
    close_all(peers)
    return {"rate": grown / connections}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    def __init__(self, script: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        )
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{script.name} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.pid = self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


async def measure(
    script: Path, scenario: Callable[[ServerProcess], Awaitable[dict[str, float]]]
) -> dict[str, float]:
    server = ServerProcess(script)
    try:
        server_cpu, own_cpu = cpu_seconds(server.pid), time.process_time()
        result = await scenario(server)
        result["server_cpu"] = cpu_seconds(server.pid) - server_cpu
        result["generator_cpu"] = time.process_time() - own_cpu
        return result
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="stelar-tcp against a bare asyncio relay")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # raised for 5,000 idle connections
    os.sched_setaffinity(0, {1})
    scale = 0.1 if args.quick else 1.0
    idle = min(5000, (hard - 200) // 2)
    scenarios: dict[str, tuple[str, Callable[[ServerProcess], Awaitable[dict[str, float]]]]] = {
        "ACK round trips/s, 1 client": ("rt/s", lambda s: ack_round_trips(s.port, 1, int(20_000 * scale))),
        "ACK round trips/s, 50 clients": ("rt/s", lambda s: ack_round_trips(s.port, 50, int(1_000 * scale))),
        "fan-out deliveries/s, 1,000 members": ("del/s", lambda s: fan_out(s.port, 1000, int(200 * scale))),
        f"RSS per idle connection ({idle:,})": ("bytes", lambda s: idle_memory(s.port, s.pid, idle)),
    }
    print(
        f"stelar-tcp vs a bare asyncio relay; server on CPU 0, generator on CPU 1; medians of {args.repeat}"
    )
    print(f"Python {sys.version.split()[0]}, open-files limit {hard}\n")
    print(
        "| scenario | stelar tcp | raw asyncio relay | ratio "
        "| p50 / p99 µs (stelar · raw) | CPU s server · generator (stelar) |"
    )
    print("|---|---:|---:|---:|---|---|")
    for name, (unit, scenario) in scenarios.items():
        results = {}
        for system, script in SYSTEMS.items():
            runs = [asyncio.run(measure(script, scenario)) for _ in range(args.repeat)]
            results[system] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            results[system]["min"] = min(run["rate"] for run in runs)
            results[system]["max"] = max(run["rate"] for run in runs)
        ours, raw = results["stelar tcp"], results["raw asyncio relay"]
        ratio = ours["rate"] / raw["rate"]
        latency = (
            f"{ours['p50']:.0f}/{ours['p99']:.0f} · {raw['p50']:.0f}/{raw['p99']:.0f}"
            if "p50" in ours
            else ""
        )
        cells = [f"{r['rate']:,.0f} ({r['min']:,.0f}-{r['max']:,.0f})" for r in (ours, raw)]
        cpu = f"{ours['server_cpu']:.1f} · {ours['generator_cpu']:.1f}"
        print(f"| {name} ({unit}) | {cells[0]} | {cells[1]} | {ratio:.2f}x | {latency} | {cpu} |")


if __name__ == "__main__":
    main()
