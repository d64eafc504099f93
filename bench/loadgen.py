"""The load generator shared by bench/tcp.py and bench/ws.py.

Peers count frames by the stelar type byte without decoding them, so the generator is not the
bottleneck; scenarios check that nothing is lost or duplicated; servers run in fresh processes
pinned to CPU 0 while the generator runs on CPU 1, and both CPU times are reported.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

LENGTH = struct.Struct(">I")
MESSAGE = b'{"user":"ann","room":"general","text":"hello there, how is everyone doing today?","n":12345}'
RELAYED, ANSWER, WELCOME, ROOM_ANSWER = 0, 5, 6, 8


def stelar_frame(kind: int, event: bytes, payload: bytes = b"", ack_id: int | None = None) -> bytes:
    body = bytes([kind]) + len(event).to_bytes(2, "big") + event
    if ack_id is not None:
        body += ack_id.to_bytes(4, "big")
    return body + payload


CONNECT = stelar_frame(6, b"", b'{"auth":{}}')
JOIN = stelar_frame(8, b"room")
REQUEST = stelar_frame(4, b"echo", MESSAGE, ack_id=1)
FAN = stelar_frame(0, b"fan", MESSAGE)


class Peer(asyncio.Protocol):
    """Counts received stelar frames per type; ``expect`` resolves when enough have arrived."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.counts = [0] * 11
        self.kind = -1
        self.wanted = 0
        self.waiter: asyncio.Future[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.ready.set_result(None)

    def expect(self, kind: int, wanted: int) -> asyncio.Future[None]:
        self.kind, self.wanted = kind, wanted
        self.waiter = asyncio.get_running_loop().create_future()
        if self.counts[kind] >= wanted:
            self.waiter.set_result(None)
        return self.waiter

    def data_received(self, data):
        self.buffer += data
        self.parse()
        if self.waiter is not None and self.counts[self.kind] >= self.wanted and not self.waiter.done():
            self.waiter.set_result(None)

    def send(self, frame: bytes) -> None:
        raise NotImplementedError

    def parse(self) -> None:
        raise NotImplementedError


class LengthPrefixedPeer(Peer):
    """stelar over TCP."""

    def send(self, frame: bytes) -> None:
        self.transport.write(LENGTH.pack(len(frame)) + frame)

    def send_many(self, frame: bytes, count: int) -> None:
        self.transport.write((LENGTH.pack(len(frame)) + frame) * count)

    def parse(self) -> None:
        buffer, counts = self.buffer, self.counts
        offset, end = 0, len(buffer)
        while end - offset >= 4:
            (size,) = LENGTH.unpack_from(buffer, offset)
            if end - offset - 4 < size:
                break
            counts[buffer[offset + 4]] += 1
            offset += 4 + size
        del buffer[:offset]


MASK = b"\x00\x00\x00\x00"  # a zero mask: valid, and the payload needs no XOR


def ws_client_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes((0x82, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x82, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x82, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + MASK + payload


class WebSocketPeer(Peer):
    """stelar over WebSocket: hand-made upgrade, masked binary frames out, counting frames in."""

    def __init__(self) -> None:
        super().__init__()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        super().connection_made(transport)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: stelar.v1\r\n\r\n"
            ).encode()
        )

    def send(self, frame: bytes) -> None:
        self.transport.write(ws_client_frame(frame))

    def send_many(self, frame: bytes, count: int) -> None:
        self.transport.write(ws_client_frame(frame) * count)

    def parse(self) -> None:
        buffer, counts = self.buffer, self.counts
        if not self.upgraded.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in buffer[:end]:
                raise ConnectionError(bytes(buffer[:end]).decode())
            del buffer[: end + 4]
            self.upgraded.set_result(None)
        offset, end = 0, len(buffer)
        while end - offset >= 2:
            size, head = buffer[offset + 1] & 0x7F, 2
            if size == 126:
                if end - offset < 4:
                    break
                size, head = int.from_bytes(buffer[offset + 2 : offset + 4], "big"), 4
            elif size == 127:
                if end - offset < 10:
                    break
                size, head = int.from_bytes(buffer[offset + 2 : offset + 10], "big"), 10
            if end - offset - head < size:
                break
            if buffer[offset] & 0x0F == 0x2 and size:
                counts[buffer[offset + head]] += 1
            offset += head + size
        del buffer[:offset]


async def open_peers(kind: type[Peer], port: int, count: int, *, join: bool = False) -> list[Peer]:
    loop = asyncio.get_running_loop()
    peers: list[Peer] = []
    for start in range(0, count, 200):  # in batches, under the listen backlog
        batch = await asyncio.gather(
            *(loop.create_connection(kind, "127.0.0.1", port) for _ in range(min(200, count - start)))
        )
        peers.extend(peer for _, peer in batch)
    for peer in peers:
        if isinstance(peer, WebSocketPeer):
            await peer.upgraded
        peer.send(CONNECT)
        if join:
            peer.send(JOIN)
    await asyncio.gather(*(peer.expect(ROOM_ANSWER if join else WELCOME, 1) for peer in peers))
    return peers


def close_all(peers: Sequence[Peer]) -> None:
    for peer in peers:
        peer.transport.close()


async def ack_round_trips(kind: type[Peer], port: int, clients: int, per_client: int) -> dict[str, float]:
    peers = await open_peers(kind, port, clients)
    latencies: list[float] = []

    async def run(peer: Peer) -> None:
        for n in range(1, per_client + 1):
            started = time.perf_counter()
            peer.send(REQUEST)
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


async def fan_out(kind: type[Peer], port: int, members: int, messages: int) -> dict[str, float]:
    peers = await open_peers(kind, port, members, join=True)
    (publisher,) = await open_peers(kind, port, 1)
    began = time.perf_counter()
    publisher.send_many(FAN, messages)  # type: ignore[attr-defined]
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


async def idle_memory(kind: type[Peer], port: int, pid: int, connections: int) -> dict[str, float]:
    close_all(await open_peers(kind, port, 50))  # warm up allocators first
    await asyncio.sleep(0.5)  # settle before the baseline reading (a benchmark, not a test)
    before = rss(pid)
    peers = await open_peers(kind, port, connections)
    await asyncio.sleep(0.5)  # idle means idle: let lazy allocation happen
    grown = rss(pid) - before
    close_all(peers)
    return {"rate": grown / connections}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """A server script in a fresh process on CPU 0; it prints "PORT <n>" once listening."""

    def __init__(self, command: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *command],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            raise RuntimeError(f"{command} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.pid = self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


Scenario = Callable[[ServerProcess], Awaitable[dict[str, float]]]


async def measure(command: Sequence[str], scenario: Scenario) -> dict[str, float]:
    server = ServerProcess(command)
    try:
        server_cpu, own_cpu = cpu_seconds(server.pid), time.process_time()
        result = await scenario(server)
        result["server_cpu"] = cpu_seconds(server.pid) - server_cpu
        result["generator_cpu"] = time.process_time() - own_cpu
        return result
    finally:
        server.stop()


def prepare() -> int:
    """Raise the open-files limit to its hard limit, pin the generator to CPU 1; the limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.sched_setaffinity(0, {1})
    return hard


def run_table(systems: dict[str, Sequence[str]], scenarios: dict[str, Scenario], repeat: int) -> None:
    """Every scenario on every system, ``repeat`` times each; prints a markdown table whose ratio
    column is the first system over the second."""
    names = list(systems)
    print(
        f"| scenario | {' | '.join(names)} | ratio 1st/2nd | p50 / p99 µs ({' · '.join(names[:2])}) "
        "| CPU s server · generator (1st) |"
    )
    print("|---|" + "---:|" * len(names) + "---:|---|---|")
    for name, scenario in scenarios.items():
        results = {}
        for system, command in systems.items():
            runs = [asyncio.run(measure(command, scenario)) for _ in range(repeat)]
            merged = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            merged["min"] = min(run["rate"] for run in runs)
            merged["max"] = max(run["rate"] for run in runs)
            results[system] = merged
        first, second = results[names[0]], results[names[1]]
        latency = (
            f"{first['p50']:.0f}/{first['p99']:.0f} · {second['p50']:.0f}/{second['p99']:.0f}"
            if "p50" in first
            else ""
        )
        cells = " | ".join(f"{r['rate']:,.0f} ({r['min']:,.0f}-{r['max']:,.0f})" for r in results.values())
        cpu = f"{first['server_cpu']:.1f} · {first['generator_cpu']:.1f}"
        print(f"| {name} | {cells} | {first['rate'] / second['rate']:.2f}x | {latency} | {cpu} |", flush=True)


HERE = Path(__file__).resolve().parent


def main(
    description: str, systems: dict[str, Sequence[str]], peer: type[Peer], ack_counts: tuple[int, int]
) -> None:
    """The command line of a transport benchmark: the four scenarios on every system."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    limit = prepare()
    scale = 0.1 if args.quick else 1.0
    idle = min(5000, (limit - 200) // 2)
    one, fifty = (int(count * scale) for count in ack_counts)
    scenarios: dict[str, Scenario] = {
        "ACK round trips/s, 1 client": lambda s: ack_round_trips(peer, s.port, 1, one),
        "ACK round trips/s, 50 clients": lambda s: ack_round_trips(peer, s.port, 50, fifty),
        "fan-out deliveries/s, 1,000 members": lambda s: fan_out(peer, s.port, 1000, int(200 * scale)),
        f"RSS bytes per idle connection ({idle:,})": lambda s: idle_memory(peer, s.port, s.pid, idle),
    }
    print(f"{description}; server on CPU 0, generator on CPU 1; medians of {args.repeat}")
    print(f"Python {sys.version.split()[0]}, open-files limit {limit}\n")
    run_table(systems, {name: run for name, run in scenarios.items() if args.only in name}, args.repeat)
