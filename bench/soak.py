"""Soak: a stelar server under mixed, churning, partly hostile traffic for a given duration.

    .venv/bin/python bench/soak.py --duration 600     # seconds; --interval 10; bounded, loopback

The server runs in its own process (WebSocket + TCP + health, pinned to CPU 0); this process
(CPU 1) runs StelarClients: steady WebSocket and TCP clients chatting in rooms and making
requests, churners that connect, join, chat and leave in a loop, one flooder that exceeds its
rate limit (and is disconnected, and comes back), and one slow reader that reads a trickle (and
is dropped as a slow consumer once the kernel's buffers and the server's bound are full, and
comes back). Every interval it prints connections, messages/s,
the steady clients' ACK p50/p99 and the server's RSS; at the end, the RSS growth after warm-up
and the messages lost or duplicated between steady clients, which must be zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

from stelar_core import StelarClient
from stelar_core.protocol import FrameType, dump_json, encode_frame, length_prefixed

HERE = Path(__file__).resolve().parent
ROOMS = 8
STEADY_PER_TRANSPORT = 40
CHURNERS = 20
CHAT_EVERY = 0.2  # seconds, per steady client
REQUEST_EVERY = 0.5


class Tally:
    """What each steady client received from each steady sender, by sequence number."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.sent: dict[str, int] = defaultdict(int)
        self.latencies: list[float] = []
        self.received = 0

    def problems(self, members: dict[str, set[str]], rooms: dict[str, str]) -> tuple[int, int]:
        """(lost, duplicated) over every steady receiver and steady sender of the same room."""
        lost = duplicated = 0
        for receiver, room in rooms.items():
            for sender in members[room] - {receiver}:
                got = self.seen[(receiver, sender)]
                duplicated += len(got) - len(set(got))
                lost += self.sent[sender] - len(set(got))
        return lost, duplicated


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


async def steady(name: str, url: str, room: str, tally: Tally, stop: asyncio.Event) -> None:
    client = StelarClient(
        url, auth={"name": name, "role": "steady"}, reconnection_attempts=None, message_queue_size=10_000
    )

    def chat(data):
        tally.received += 1
        if data["room"] == room:
            tally.seen[(name, data["from"])].append(data["seq"])

    client.on("chat", chat)
    async with client:
        assert await client.join_room(room)
        await ready.wait()
        seq, next_request = 0, time.monotonic()
        while not stop.is_set():
            seq += 1
            client.emit("chat", {"from": name, "room": room, "seq": seq})
            tally.sent[name] = seq
            if time.monotonic() >= next_request:
                started = time.perf_counter()
                await client.request("echo", seq, timeout=10)
                tally.latencies.append(time.perf_counter() - started)
                next_request = time.monotonic() + REQUEST_EVERY
            await asyncio.sleep(CHAT_EVERY * random.uniform(0.5, 1.5))
        # Let the last messages arrive before counting.
        await client.request("echo", 0, timeout=10)
        await asyncio.sleep(1.0)


async def churner(url: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    while not stop.is_set():
        async with StelarClient(url, auth={"role": "churner"}, reconnection=False) as client:
            await client.join_room(f"room-{random.randrange(ROOMS)}")
            for _ in range(3):
                client.emit("chat", {"from": "churner", "room": "", "seq": 0})
            await client.request("echo", 1, timeout=10)
        counts["churn"] += 1
        await asyncio.sleep(random.uniform(0.05, 0.3))


async def flooder(url: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    client = StelarClient(
        url,
        auth={"role": "flooder"},
        reconnection_attempts=None,
        reconnection_delay=0.5,
        message_queue_size=0,
    )
    client.on("disconnect", lambda info: counts.__setitem__("flooder_dropped", counts["flooder_dropped"] + 1))
    async with client:
        while not stop.is_set():
            if client.connected:
                for _ in range(100):
                    client.emit("spam", "x")
            await asyncio.sleep(0.05)


class SlowReader(asyncio.Protocol):
    """Connects over raw TCP, joins every room, then reads one chunk every 2 s: far slower than
    the rooms' traffic. It keeps sending pings, so the server sees it alive: only its unread
    output can get it dropped. (A peer that never read at all went silent in earlier soaks: its
    pings stopped reaching the server's socket, and the server rightly closed it for heartbeat.)"""

    def __init__(self) -> None:
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hello = dump_json({"auth": {"role": "slow reader"}})
        transport.write(length_prefixed(encode_frame(FrameType.CONNECT, "", hello)))
        for room in range(ROOMS):
            transport.write(length_prefixed(encode_frame(FrameType.JOIN, f"room-{room}")))
        transport.pause_reading()

    def data_received(self, data):
        self.transport.pause_reading()  # one chunk per trickle

    def trickle(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc):
        if not self.gone.done():
            self.gone.set_result(None)


async def slow_reader(tcp_port: int, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Reopened every time the server drops it as a slow consumer."""
    loop = asyncio.get_running_loop()
    ping = length_prefixed(encode_frame(FrameType.PING))
    while not stop.is_set():
        transport, reader = await loop.create_connection(SlowReader, "127.0.0.1", tcp_port)
        while not stop.is_set() and not reader.gone.done():
            transport.write(ping)
            reader.trickle()
            await asyncio.wait({reader.gone}, timeout=2.0)
        transport.abort()
        counts["slow_reopened"] += 1


ready = asyncio.Event()


async def soak(duration: float, interval: float, flood: bool = True) -> int:
    server = subprocess.Popen(  # noqa: ASYNC220 (once, before any traffic)
        [sys.executable, str(HERE / "servers" / "soak_server.py")],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    ports = json.loads(server.stdout.readline())  # type: ignore[union-attr]
    ws_url, tcp_url = f"ws://127.0.0.1:{ports['ws']}/", f"tcp://127.0.0.1:{ports['tcp']}"
    tally, stop = Tally(), asyncio.Event()
    counts: dict[str, int] = defaultdict(int)
    rooms: dict[str, str] = {}
    members: dict[str, set[str]] = defaultdict(set)
    tasks = []
    for index in range(2 * STEADY_PER_TRANSPORT):
        url = ws_url if index % 2 == 0 else tcp_url
        name, room = f"steady-{index}", f"room-{index % ROOMS}"
        rooms[name] = room
        members[room].add(name)
        tasks.append(asyncio.ensure_future(steady(name, url, room, tally, stop)))
    await asyncio.sleep(2.0)  # let every steady client join before anyone chats
    ready.set()
    tasks += [
        asyncio.ensure_future(churner(random.choice([ws_url, tcp_url]), stop, counts))
        for _ in range(CHURNERS)
    ]
    if flood:
        tasks.append(asyncio.ensure_future(flooder(tcp_url, stop, counts)))
    tasks.append(asyncio.ensure_future(slow_reader(ports["tcp"], stop, counts)))

    print(
        f"soak for {duration:.0f}s: {2 * STEADY_PER_TRANSPORT} steady clients (ws + tcp) in {ROOMS} rooms, "
        f"{CHURNERS} churners, {int(flood)} flooder, 1 slow reader\n"
    )
    print(
        "| t (s) | connections | msgs in/s | msgs out/s | ACK p50 ms | ACK p99 ms | server RSS MB "
        "| churn cycles | flooder drops | slow consumers |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    started = time.monotonic()
    previous = await asyncio.to_thread(health, ports["ws"])
    baseline_rss = None
    while time.monotonic() - started < duration:
        await asyncio.sleep(interval)
        now = await asyncio.to_thread(health, ports["ws"])
        elapsed = time.monotonic() - started
        received = (now["total_messages_received"] - previous["total_messages_received"]) / interval
        sent = (now["total_messages_sent"] - previous["total_messages_sent"]) / interval
        latencies, tally.latencies = sorted(tally.latencies), []
        p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
        p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
        rss = now["memory_usage"]["rss"] / 1e6
        if baseline_rss is None and elapsed >= min(60.0, duration / 4):
            baseline_rss = rss
        slow = now["counters"].get("slow_consumers", 0)
        print(
            f"| {elapsed:.0f} | {now['active_connections']} | {received:,.0f} | {sent:,.0f} | {p50:.2f} "
            f"| {p99:.2f} | {rss:.1f} | {counts['churn']} | {counts['flooder_dropped']} | {slow} |",
            flush=True,
        )
        previous = now
    stop.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    failures = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    final = await asyncio.to_thread(health, ports["ws"])
    server.send_signal(signal.SIGTERM)
    server.wait(30)
    lost, duplicated = tally.problems(members, rooms)
    rss_end = final["memory_usage"]["rss"] / 1e6
    print(
        f"\nRSS after warm-up {baseline_rss or rss_end:.1f} MB, at the end {rss_end:.1f} MB "
        f"(growth {rss_end - (baseline_rss or rss_end):+.1f} MB)"
    )
    print(f"steady messages: {sum(tally.sent.values()):,} sent, lost {lost}, duplicated {duplicated}")
    print(
        f"slow reader reopened {counts['slow_reopened']} times; generator task failures: {failures or 'none'}"
    )
    print(
        f"server totals: {final['total_connections']:,} connections accepted, "
        f"refused {final['refused_connections']}, rate limited {final['rate_limited']:,}, "
        f"slow consumers {final['counters'].get('slow_consumers', 0)}"
    )
    closes = {
        name[len("closed ") :]: count
        for name, count in final["counters"].items()
        if name.startswith("closed ")
    }
    print(
        "connections ended by: " + ", ".join(f"{reason} x{count}" for reason, count in sorted(closes.items()))
    )
    return 0 if lost == 0 and duplicated == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="stelar soak run")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (a 10-minute run: 600)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between table rows")
    parser.add_argument(
        "--no-flooder", action="store_true", help="leave the flooder out (its cost, by comparison)"
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.sched_setaffinity(0, {1})
    sys.exit(asyncio.run(soak(min(args.duration, 3600.0), args.interval, flood=not args.no_flooder)))


if __name__ == "__main__":
    main()
