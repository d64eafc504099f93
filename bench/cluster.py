"""The cluster scenario of bench/run: two server processes joined by a broker of their own.

Measured side by side: stelar on one node (the ceiling), stelar on two nodes with the Redis
broker on one Redis, on a 3-shard Redis Cluster and on NATS, python-socketio on two nodes with
its AsyncRedisManager. Fan-out: 1,000 members of one
room split across the nodes, the publisher on node one, one burst; deliveries/s counted at every
member and, separately, at the members of the other node (cross-node). Cross-node ACKs: a client
of node one asks its server to ask a client of node two (``server.request`` / ``sio.call``), one
request at a time; p50/p99. Broker commands per broadcast come from ``INFO commandstats``
(summed over the shards of a cluster) and from NATS's ``/varz`` (messages in). Admission: one
stelar node on Redis opening and closing WebSocket connections, with the exact cluster-wide
per-IP limit (``ip_tracker = "redis"``) and without.

    bench/.venv/bin/python bench/cluster.py [--quick]   # prints the table; bench/run writes it
                                                          # into bench/RESULTS.md

Loopback only; every scenario is bounded and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid

import redis
import socketio
from compare import ServerProcess, python, write_section
from loadgen import (
    RELAYED,
    SocketIOPeer,
    Tally,
    WebSocketPeer,
    Window,
    churn,
    close_all,
    local,
    open_peers,
    percentile,
)

from stelar_core import StelarClient
from stelar_core.testing.processes import free_port
from stelar_nats.testing import NatsProcess
from stelar_redis.testing import RedisClusterProcesses

NOTE = """Every server process is pinned to CPU 0 (as in the rest of this benchmark), so the two nodes
share one core; Redis and the load generator share the other. Fan-out: WebSocket members, the
publisher on node one; cross-node deliveries/s counts node two's members alone. ACKs: a client of
node one asks its server to ask a client of node two (`server.request` / `sio.call`), one
request at a time, through the Python clients (`StelarClient`, `socketio.AsyncClient`). Broker
commands per broadcast: `INFO commandstats` over the burst, summed over the Redis Cluster's three
primaries (no replicas in this run), and NATS's `in_msgs` from `/varz` (stelar's heartbeats are
slowed in this run so that only messages are counted). `bench/.venv/bin/python bench/cluster.py`."""


# The benchmark's own commands (INFO, and KEYS/HLEN while it waits), not stelar's.
NOT_COUNTED = ("cmdstat_info", "cmdstat_hello", "cmdstat_keys", "cmdstat_hlen")


class RedisServer:
    """redis-server on a free port, nothing on disk, for the run."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench/cluster.py needs redis-server (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in self.process.stdout:  # type: ignore[union-attr]
            if "Ready to accept connections" in line:
                break
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.option = "--redis"
        self.client = redis.Redis.from_url(self.url)

    def calls(self) -> int:
        stats = self.client.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k not in NOT_COUNTED)

    def wait_for_no_ip_counted(self, prefix: str, timeout: float = 10.0) -> None:
        """Until no node of ``prefix`` counts a connection (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while any(self.client.hlen(key) for key in self.client.keys(f"{prefix}:node:*:ips")):
            if time.monotonic() > deadline:
                raise TimeoutError("connections still counted in Redis")
            time.sleep(0.01)

    def stop(self) -> None:
        self.client.close()
        self.process.kill()
        self.process.wait()


class RedisClusterServer:
    """A loopback Redis Cluster of three primaries (no replicas: fewer processes on two cores)."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory()
        self.cluster = RedisClusterProcesses(self._directory.name, primaries=3, replicas=0)
        self.cluster.start()
        self.url = self.cluster.url
        self.option = "--redis"

    def calls(self) -> int:
        total = 0
        for node in self.cluster.primaries():
            with redis.Redis(port=node.port) as client:
                stats = client.info("commandstats")
            total += sum(v["calls"] for k, v in stats.items() if k not in NOT_COUNTED)
        return total

    def stop(self) -> None:
        self.cluster.stop()
        self._directory.cleanup()


class NatsServer:
    """nats-server on a free port, with its monitoring port for /varz."""

    def __init__(self) -> None:
        self.monitor = free_port()
        self.server = NatsProcess(arguments=("-m", str(self.monitor)))
        self.server.start()
        self.url = self.server.url
        self.option = "--nats"

    def calls(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/varz", timeout=5) as answer:
            return int(json.load(answer)["in_msgs"])

    def stop(self) -> None:
        self.server.stop()


def nodes(system: str, broker, count: int) -> list[ServerProcess]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    if system == "stelar":
        argv = python("stelar_relay.py", "ws", "asyncio", broker.option, broker.url, prefix)
        return [ServerProcess(argv) for _ in range(count)]
    return [ServerProcess(python("socketio_relay.py", "--redis", broker.url)) for _ in range(count)]


async def fan_out(peer: type, ports: list[int], members: int, messages: int, broker) -> dict[str, float]:
    tally, remote = Tally(), Tally()
    groups = []
    for index, port in enumerate(ports):
        group = await open_peers(peer, local(port), members // len(ports), join=True)
        for member in group:
            member.tally = tally if index == 0 else _Both(tally, remote)
        groups.append(group)
    (publisher,) = await open_peers(peer, local(ports[0]), 1)
    await asyncio.sleep(0.5)  # a benchmark, not a test: let every node's room subscription settle
    calls_before = broker.calls()
    started = time.perf_counter()
    publisher.publish(messages)
    remote_total = members // len(ports) * (len(ports) - 1) * messages
    await asyncio.wait_for(remote.wait_for(remote_total), 300)
    remote_seconds = time.perf_counter() - started
    await asyncio.wait_for(tally.wait_for(members // len(ports) * len(ports) * messages), 300)
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.3)  # a short look for extra deliveries
    received = sum(member.counts[RELAYED] for group in groups for member in group)
    expected = members // len(ports) * len(ports) * messages
    if received != expected:
        raise AssertionError(f"lost or duplicated deliveries: {received:,} != {expected:,}")
    commands = (broker.calls() - calls_before) / messages
    await close_all([*[m for g in groups for m in g], publisher])
    return {"rate": expected / seconds, "cross": remote_total / remote_seconds, "commands": commands}


class _Both:
    """Counts a remote member's deliveries in the total and in the cross-node tally."""

    def __init__(self, *tallies: Tally) -> None:
        self.tallies = tallies

    def add(self, count: int) -> None:
        for tally in self.tallies:
            tally.add(count)


async def stelar_acks(asker_url: str, answerer_url: str, count: int) -> list[float]:
    answerer = StelarClient(answerer_url, reconnection=False)
    answerer.on_ack("echo", lambda data: data)
    asker = StelarClient(asker_url, reconnection=False)
    async with answerer, asker:
        await asyncio.sleep(0.5)  # the directory entry of the answerer is written in the background
        return [await _timed(asker.request("ask", answerer.id, timeout=10)) for _ in range(count)]


async def socketio_acks(asker_port: int, answerer_port: int, count: int) -> list[float]:
    answerer, asker = socketio.AsyncClient(), socketio.AsyncClient()
    answerer.on("echo", lambda data: data)
    await answerer.connect(f"http://127.0.0.1:{answerer_port}", transports=["websocket"])
    await asker.connect(f"http://127.0.0.1:{asker_port}", transports=["websocket"])
    try:
        return [await _timed(asker.call("ask", answerer.get_sid(), timeout=10)) for _ in range(count)]
    finally:
        await asker.disconnect()
        await answerer.disconnect()


async def _timed(awaitable) -> float:
    started = time.perf_counter()
    await awaitable
    return time.perf_counter() - started


def measure(system: str, broker, members: int, messages: int, asks: int) -> dict[str, float]:
    if system == "stelar, 1 node":
        server = ServerProcess(python("stelar_relay.py", "ws", "asyncio"))
        try:
            return asyncio.run(fan_out(WebSocketPeer, [server.port], members, messages, broker))
        finally:
            server.stop()
    kind = "stelar" if system.startswith("stelar") else "socketio"
    processes = nodes(kind, broker, 2)
    try:
        ports = [process.port for process in processes]
        peer = WebSocketPeer if kind == "stelar" else SocketIOPeer
        figures = asyncio.run(fan_out(peer, ports, members, messages, broker))
        if kind == "stelar":
            urls = [f"ws://127.0.0.1:{port}/" for port in ports]
            latencies = asyncio.run(stelar_acks(urls[0], urls[1], asks))
        else:
            latencies = asyncio.run(socketio_acks(ports[0], ports[1], asks))
    finally:
        for process in processes:
            process.stop()
    latencies.sort()
    return {
        **figures,
        "ack_rate": len(latencies) / sum(latencies),
        "p50": percentile(latencies, 0.5) * 1e6,
        "p99": percentile(latencies, 0.99) * 1e6,
    }


REDIS, CLUSTER, NATS = (
    "stelar, 2 nodes on Redis",
    "stelar, 2 nodes on Redis Cluster (3 shards)",
    "stelar, 2 nodes on NATS",
)
SOCKETIO = "python-socketio, 2 nodes on Redis"
# Each system with the broker it runs on.
SYSTEMS = (
    ("stelar, 1 node", RedisServer),
    (REDIS, RedisServer),
    (CLUSTER, RedisClusterServer),
    (NATS, NatsServer),
    (SOCKETIO, RedisServer),
)


def admission(cycles: int) -> dict[str, dict[str, float]]:
    """Connections opened and closed per second on one stelar node on Redis, with the exact
    cluster-wide per-IP limit and without; Redis commands per connection."""
    results = {}
    redis_server = RedisServer()
    try:
        for name, extra in (
            ("without a per-IP limit", ()),
            ("exact per-IP limit (ip_tracker = redis)", ("--ip-limit", "100000")),
        ):
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            server = ServerProcess(
                python("stelar_relay.py", "ws", "asyncio", "--redis", redis_server.url, prefix, *extra)
            )
            try:
                before = redis_server.calls()
                figures = asyncio.run(
                    churn(WebSocketPeer, local(server.port), Window(server.pid), cycles, 10)
                )
                # Releases are written behind: wait until every place is given back before counting.
                redis_server.wait_for_no_ip_counted(prefix)
                figures["commands"] = (redis_server.calls() - before) / cycles
            finally:
                server.stop()
            results[name] = figures
    finally:
        redis_server.stop()
    return results


def admission_table(results: dict[str, dict[str, float]], cycles: int) -> list[str]:
    lines = [
        "",
        f"#### Connection admission on Redis, {cycles:,} WebSocket connections opened and closed, "
        "10 at a time",
        "",
        "| admission | connections/s | server CPU µs per connection | Redis commands per connection |",
        "|---|---:|---:|---:|",
    ]
    for name, f in results.items():
        cpu = f["server_cpu"] * f["seconds"] / cycles * 1e6
        lines.append(f"| {name} | {f['rate']:,.0f} | {cpu:,.0f} | {f['commands']:.1f} |")
    return lines


def table(results: dict[str, dict[str, float]], members: int, messages: int) -> list[str]:
    lines = [
        f"### Cluster: 2 nodes on a broker, {members:,} members split across them, {messages:,} "
        "messages in a burst",
        "",
        *NOTE.splitlines(),
        "",
        "| system | fan-out deliveries/s | cross-node deliveries/s | broker commands per broadcast "
        "| cross-node ACK p50 µs | p99 µs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in results.items():
        if "error" in f:
            lines.append(f"| {name} | failed: {f['error']} | | | | |")
            continue
        ack = (f"{f['p50']:,.0f}", f"{f['p99']:,.0f}") if "p50" in f else ("-", "-")
        cross = f"{f['cross']:,.0f}" if "p50" in f else "-"
        lines.append(f"| {name} | {f['rate']:,.0f} | {cross} | {f['commands']:.2f} | {ack[0]} | {ack[1]} |")
    return lines


def targets(results: dict[str, dict[str, float]]) -> list[str]:
    two, one, sio = (results.get(k, {}) for k in (REDIS, "stelar, 1 node", SOCKETIO))
    if not all("rate" in r for r in (two, one, sio)):
        return []
    rows = [
        ("cross-node fan-out ≥ 5x python-socketio's", two["cross"] / sio["cross"], 5.0),
        ("cluster fan-out ≥ half of single-node stelar", two["rate"] / one["rate"], 0.5),
    ]
    lines = ["", "| target | measured | met |", "|---|---:|---|"]
    for label, ratio, wanted in rows:
        lines.append(f"| {label} | {ratio:.2f}x | {'yes' if ratio >= wanted else 'no'} |")
    lines.append(
        f"| one broadcast = a constant number of Redis commands | {two['commands']:.2f} per broadcast | "
        f"{'yes' if round(two['commands'], 2) == 1.0 else 'no'} |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages")
    parser.add_argument("--repeat", type=int, default=3, help="runs per system; the median is kept")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    members, messages, asks = 1000, 50 if args.quick else 500, 200 if args.quick else 2000
    results: dict[str, dict[str, float]] = {}
    for name, make_broker in SYSTEMS:
        broker = make_broker()
        runs = []
        try:
            for _ in range(1 if args.quick else args.repeat):
                try:
                    runs.append(measure(name, broker, members, messages, asks))
                except Exception as exc:  # one system failing is a result, not a crash
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                    break
        finally:
            broker.stop()
        if runs:
            results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(name, results[name], flush=True)
    cycles = 500 if args.quick else 3000
    admitted = admission(cycles)
    lines = table(results, members, messages) + targets(results) + admission_table(admitted, cycles)
    print("\n".join(lines))
    if not args.no_write:
        write_section("cluster", lines)


if __name__ == "__main__":
    main()
