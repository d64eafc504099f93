"""The scenarios peers play, timed: fan-out, ACK round trips, connection churn, idle memory.

Shared by ``stelar bench`` (against any deployment) and ``bench/`` (side by side with other
servers), so both report the same figures for the same scenario. Every scenario is bounded in
count and in time and stops by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence

import attrs

from stelar_core.loadgen.peers import ANSWER, JOINED, RELAYED, WELCOME, Peer, Tally, Target

# The longest any one wait of a scenario may take before it fails.
PHASE_TIMEOUT = 120.0


@attrs.define
class Progress:
    """How far a scenario is (``done`` of ``total``), for a progress bar to read now and then;
    scenarios update it as they go at no cost worth counting."""

    total: int = 0
    done: int = 0
    phase: str = ""
    read: Callable[[], int] | None = None

    def current(self) -> int:
        return self.read() if self.read is not None else self.done


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Window:
    """The timed part of a scenario: wall time, the generator's CPU use and, when the server's
    process is on this machine (``server_pid``), the server's (1.0 = one core busy; a generator
    near 1.0 would be the bottleneck). With ``profiled``, the server is told by SIGUSR1/SIGUSR2
    to profile just this part."""

    def __init__(self, server_pid: int | None = None, profiled: bool = False) -> None:
        self.pid = server_pid
        self.profiled = profiled

    def start(self) -> None:
        if self.profiled and self.pid is not None:
            os.kill(self.pid, signal.SIGUSR1)
        self.began = time.perf_counter()
        self.server_cpu = cpu_seconds(self.pid) if self.pid is not None else 0.0
        self.own_cpu = time.process_time()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.began
        if self.profiled and self.pid is not None:
            os.kill(self.pid, signal.SIGUSR2)
        measured = {"seconds": wall, "generator_cpu": (time.process_time() - self.own_cpu) / wall}
        if self.pid is not None:
            measured["server_cpu"] = (cpu_seconds(self.pid) - self.server_cpu) / wall
        return measured


async def open_peers(
    kind: type[Peer], target: Target, count: int, *, join: bool = False, progress: Progress | None = None
) -> list[Peer]:
    peers: list[Peer] = []
    for start in range(0, count, 200):  # in batches, under the listen backlog
        batch = list(await asyncio.gather(*(target.connect(kind) for _ in range(min(200, count - start)))))
        await asyncio.wait_for(asyncio.gather(*(peer.opened() for peer in batch)), 60)
        for peer in batch:
            peer.hello()
        await asyncio.wait_for(asyncio.gather(*(peer.expect(WELCOME, 1) for peer in batch)), 60)
        if join:  # after the welcome: a Socket.IO server closes on an event before its connect
            for peer in batch:
                peer.join()
            await asyncio.wait_for(asyncio.gather(*(peer.expect(JOINED, 1) for peer in batch)), 60)
        peers.extend(batch)
        if progress is not None:
            progress.done = len(peers)
    return peers


async def close_all(peers: Sequence[Peer]) -> None:
    """Close and wait until the sockets are closed, so the server sees every peer leave before
    it is stopped (a server stopped first would wait out its shutdown grace)."""
    for peer in peers:
        peer.transport.close()
    await asyncio.wait_for(asyncio.gather(*(peer.closed for peer in peers)), 30)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def ack_round_trips(
    kind: type[Peer],
    target: Target,
    window: Window,
    clients: int,
    per_client: int,
    progress: Progress | None = None,
) -> dict[str, float]:
    """``clients`` peers each asking ``per_client`` requests, one after the other: round
    trips/s, and p50/p99 of a round trip in µs."""
    progress = progress or Progress()
    progress.phase, progress.total = "connecting", clients
    peers = await open_peers(kind, target, clients, progress=progress)
    latencies: list[float] = []
    progress.phase, progress.total, progress.read = "requests", clients * per_client, latencies.__len__

    async def run(peer: Peer) -> None:
        for n in range(1, per_client + 1):
            started = time.perf_counter()
            peer.request()
            await peer.expect(ANSWER, n)
            latencies.append(time.perf_counter() - started)

    window.start()
    await asyncio.wait_for(asyncio.gather(*(run(peer) for peer in peers)), PHASE_TIMEOUT)
    measured = window.stop()
    await close_all(peers)
    latencies.sort()
    return {
        **measured,
        "rate": clients * per_client / measured["seconds"],
        "p50": percentile(latencies, 0.5) * 1e6,
        "p99": percentile(latencies, 0.99) * 1e6,
    }


async def fan_out(
    kind: type[Peer],
    target: Target,
    window: Window,
    members: int,
    messages: int,
    paced: bool,
    *,
    publisher_joins: bool = False,
    progress: Progress | None = None,
) -> dict[str, float]:
    """``messages`` events published to a room of ``members``: in one burst, or paced (the next
    published when every member has the previous one; p50/p99 of that delivery time).
    ``publisher_joins``: the publisher is in the room too (for servers that relay an event to the
    rooms of its sender, as ``stelar serve``'s relay app does); its own copies are not counted."""
    progress = progress or Progress()
    tally = Tally()
    progress.phase, progress.total = "connecting", members + 1
    peers = await open_peers(kind, target, members, join=True, progress=progress)
    for peer in peers:
        peer.tally = tally
    (publisher,) = await open_peers(kind, target, 1, join=publisher_joins)
    rounds: list[float] = []
    progress.phase, progress.total, progress.read = "deliveries", members * messages, lambda: tally.count
    window.start()
    if paced:
        for n in range(1, messages + 1):
            started = time.perf_counter()
            publisher.publish(1)
            await asyncio.wait_for(tally.wait_for(n * members), 60)
            rounds.append(time.perf_counter() - started)
    else:
        publisher.publish(messages)
        await asyncio.wait_for(tally.wait_for(members * messages), PHASE_TIMEOUT)
    measured = window.stop()
    await asyncio.sleep(0.05)  # a benchmark, not a test: a short look for extra deliveries
    received = sum(peer.counts[RELAYED] for peer in peers)
    if received != members * messages:
        raise AssertionError(f"lost or duplicated deliveries: {received:,} != {members * messages:,}")
    await close_all([*peers, publisher])
    result = {**measured, "rate": members * messages / measured["seconds"]}
    if rounds:
        rounds.sort()
        result.update(p50=percentile(rounds, 0.5) * 1e6, p99=percentile(rounds, 0.99) * 1e6)
    return result


async def idle_memory(
    kind: type[Peer],
    target: Target,
    window: Window,
    connections: int,
    memory: Callable[[], Awaitable[int]],
    progress: Progress | None = None,
) -> dict[str, float]:
    """Bytes the server holds per idle connection: ``memory()`` (its resident size) before and
    after ``connections`` peers connected and said hello."""
    progress = progress or Progress()
    progress.phase, progress.total = "warming up", 50
    await close_all(await open_peers(kind, target, 50, progress=progress))  # warm up allocators first
    await asyncio.sleep(0.5)  # settle before the baseline reading (a benchmark, not a test)
    before = await memory()
    progress.phase, progress.total, progress.done = "connecting", connections, 0
    window.start()
    peers = await open_peers(kind, target, connections, progress=progress)
    measured = window.stop()
    await asyncio.sleep(0.5)  # idle means idle: let lazy allocation happen
    grown = await memory() - before
    await close_all(peers)
    return {**measured, "rate": grown / connections}


def process_memory(pid: int) -> Callable[[], Awaitable[int]]:
    """``memory`` for :func:`idle_memory` when the server's process is on this machine."""

    async def read() -> int:
        return rss(pid)

    return read


async def churn(
    kind: type[Peer],
    target: Target,
    window: Window,
    cycles: int,
    concurrency: int,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Connections per second that connect (through a TLS handshake with ``target.tls``),
    finish the stelar handshake and close, ``concurrency`` at a time."""
    progress = progress or Progress()
    progress.phase, progress.total = "connections", cycles
    left = cycles

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            peer = await target.connect(kind)
            await peer.opened()
            peer.hello()
            await peer.expect(WELCOME, 1)
            await close_all([peer])
            progress.done += 1

    window.start()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), PHASE_TIMEOUT)
    measured = window.stop()
    return {**measured, "rate": cycles / measured["seconds"]}
