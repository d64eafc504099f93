"""The delivery scenarios of bench/run (issue 26): what room history costs, and a recovery storm.

History cost: fan-out to the members of one room, one burst, into a room without history and
into the same room keeping its last 1,000 messages, with the local broker (one process), with
the Redis broker (one node on a Redis of its own) and with the NATS broker (one node on a
nats-server with JetStream of its own): deliveries/s and Redis commands per publish. Recovery
storm: clients in a room with history drop all at once, 100 messages are published meanwhile,
and they all reconnect and rejoin from their positions together: time until every one was told
``recovered: true`` with its 100 messages replayed, and the Redis commands it took.

    bench/.venv/bin/python bench/delivery.py [--quick]   # prints the table; bench/run writes it
                                                           # into bench/RESULTS.md

Loopback only; every scenario is bounded and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from cluster import NatsServer, RedisServer, fan_out
from compare import ServerProcess, python, write_section
from loadgen import WebSocketPeer

from stelar_core.protocol.publications import Position
from stelar_core.testing import TestClient, connect_url

NOTE = """The server process is pinned to CPU 0, as in the rest of this benchmark; Redis and the load
generator share the other core. Fan-out: WebSocket members of one room, the publisher a member too, one
burst; the "history" rows keep the room's last 1,000 messages (in the server's memory with the
local broker, in a Redis stream with the Redis broker, one Lua call per publish; in a JetStream
stream with the NATS broker, one acknowledged store per publish, one at a time per room, which the
node receives back through its consumer of the room). Recovery storm:
TCP clients of the test kit (`stelar_core.testing`), joined to the room, closed together; 100
messages published; all reconnect, then join from their last position at once: the time runs from
those joins to the last `recovered: true`, the replays included. Redis calls are round trips
(`EVALSHA`, and `PUBLISH` outside a script); commands run in Redis include those inside scripts
(a history publish runs HGET, HINCRBY, XADD, two PEXPIREs and PUBLISH in its one script).
python-socketio has no recovery of missed messages (its server does not implement Socket.IO's
connection state recovery: miguelgrinberg/Flask-SocketIO discussion #1987), so that scenario has
no peer. `bench/.venv/bin/python bench/delivery.py`."""


def relay(history: bool, backend: RedisServer | NatsServer | None, transport: str = "ws") -> ServerProcess:
    argv = list(python("stelar_relay.py", transport, "asyncio"))
    if history:
        argv += ["--history", "1000"]
    if backend is not None:
        argv += [backend.option, backend.url, f"bench{uuid.uuid4().hex[:6]}"]
    return ServerProcess(argv)


def history_cost(backends: dict, members: int, messages: int) -> dict[str, dict[str, float]]:
    results = {}
    redis = backends["redis"]
    for broker, backend in backends.items():
        for history in (False, True):
            server = relay(history, backend)
            try:
                # fan_out counts around the burst alone; here it counts Redis round trips.
                figures = asyncio.run(
                    fan_out(WebSocketPeer, [server.port], members, messages, RoundTrips(redis))
                )
            finally:
                server.stop()
            results[f"{broker}, {'history' if history else 'no history'}"] = figures
    return results


async def storm(port: int, clients: int, missed: int, redis: RedisServer | None) -> dict[str, float]:
    url = f"tcp://127.0.0.1:{port}"
    members = await connect_many(url, clients)
    answers = await asyncio.gather(*(member.join("room") for member in members))
    since = Position(**answers[0]["position"])
    for member in members:
        member.close()
    await asyncio.gather(*(member.wait_closed() for member in members))
    publisher = await connect_url(url)
    await publisher.join("room")
    for n in range(missed):
        publisher.emit("fan", n)
    for _ in range(missed):
        await publisher.next_event(timeout=30)
    # The reconnections themselves are the client's cost (the test kit looks its transport up per
    # connection): they are made first; the time is that of the rejoins, replays included.
    back = await connect_many(url, clients)
    before = redis_calls(redis)
    started = time.perf_counter()
    rejoined = await asyncio.gather(*(member.join("room", since=since, timeout=60) for member in back))
    seconds = time.perf_counter() - started
    after = redis_calls(redis)
    for member in (*back, publisher):
        member.close()
    if not all(answer.get("recovered") is True and answer.get("replayed") == missed for answer in rejoined):
        raise AssertionError(f"not every client recovered its {missed} messages: {rejoined[:3]}")
    return {
        "seconds": seconds,
        "commands": after["all"] - before["all"],
        "calls": after["calls"] - before["calls"],
    }


async def connect_many(url: str, count: int, batch: int = 50) -> list[TestClient]:
    """``count`` test-kit clients, ``batch`` at a time (each connect looks its transport up in
    the installed plugins, which takes a while: all at once, the last ones would time out)."""
    clients: list[TestClient] = []
    while len(clients) < count:
        size = min(batch, count - len(clients))
        clients += await asyncio.gather(
            *(connect_url(url, client=TestClient(max_kept=10_000)) for _ in range(size))
        )
    return clients


class RoundTrips:
    """``calls()``: the calls made to Redis so far (what fan_out counts around its burst)."""

    def __init__(self, redis: RedisServer) -> None:  # (counted on Redis only: 0 for others)
        self.redis = redis

    def calls(self) -> int:
        return redis_calls(self.redis)["calls"]


def redis_calls(redis: RedisServer | None) -> dict[str, int]:
    """Commands Redis ran (inside scripts too), and the calls made to it (round trips: EVALSHA,
    and PUBLISH made outside a script)."""
    if redis is None:
        return {"all": 0, "calls": 0}
    stats = redis.client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    scripted = calls.get("evalsha", 0)
    return {
        "all": sum(count for name, count in calls.items() if name not in ("info", "hello")),
        "calls": scripted + calls.get("publish", 0) - _published_by_scripts(calls),
        "evalsha": scripted,
    }


def _published_by_scripts(calls: dict[str, int]) -> int:
    # Each history publish runs one XADD and one PUBLISH inside its script.
    return calls.get("xadd", 0)


async def store_rate(port: int, count: int) -> float:
    """Publications/s into one room with history, one node: a client emits ``count`` events at
    once into the room, timed until a member of it has every one (each stored and positioned)."""
    url = f"tcp://127.0.0.1:{port}"
    member, publisher = await connect_many(url, 2)
    await member.join("room")
    started = time.perf_counter()
    for n in range(count):
        publisher.emit("fan", n)
    for _ in range(count):
        await member.next_event(timeout=60)
    seconds = time.perf_counter() - started
    member.close()
    publisher.close()
    return count / seconds


def store_rates(backends: dict, count: int) -> dict[str, float]:
    results = {}
    for broker, backend in backends.items():
        server = relay(True, backend, transport="tcp")
        try:
            results[broker] = asyncio.run(store_rate(server.port, count))
        finally:
            server.stop()
    return results


def recovery(backends: dict, clients: int, missed: int) -> dict[str, dict[str, float]]:
    results = {}
    for broker, backend in backends.items():
        server = relay(True, backend, transport="tcp")
        try:
            results[broker] = asyncio.run(
                storm(server.port, clients, missed, backend if broker == "redis" else None)
            )
        finally:
            server.stop()
    return results


def table(
    cost: dict, members: int, messages: int, storms: dict, clients: int, missed: int, rates: dict, stored: int
) -> list[str]:
    lines = [
        f"### Delivery: room history, {members:,} members, {messages:,} messages in a burst",
        "",
        *NOTE.splitlines(),
        "",
        "| broker, room | fan-out deliveries/s | vs the same broker without history "
        "| Redis calls (round trips) per publish |",
        "|---|---:|---:|---:|",
    ]
    for name, figures in cost.items():
        broker = name.split(",")[0]
        plain = cost[f"{broker}, no history"]["rate"]
        calls = f"{figures['commands']:.2f}" if broker == "redis" else "-"
        ratio = figures["rate"] / plain
        lines.append(f"| {name} | {figures['rate']:,.0f} | {ratio:.2f}x | {calls} |")
    lines += [
        "",
        f"Recovery storm: {clients:,} clients rejoin at once, {missed} messages missed each.",
        "",
        "| broker | time until all recovered | per client | Redis calls | commands run in Redis |",
        "|---|---:|---:|---:|---:|",
    ]
    for broker, figures in storms.items():
        calls = f"{figures['calls']:,.0f}" if broker == "redis" else "-"
        commands = f"{figures['commands']:,.0f}" if broker == "redis" else "-"
        per_client = figures["seconds"] / clients * 1e3
        lines.append(
            f"| {broker} | {figures['seconds'] * 1e3:,.0f} ms | {per_client:.2f} ms | {calls} | {commands} |"
        )
    lines += [
        "",
        f"Publications into one room with history from one node: {stored:,} events emitted at once by a",
        "client, timed until a member has them all (Redis: one pipelined script call each; NATS: one",
        "JetStream store at a time per room, each waiting for its acknowledgement).",
        "",
        "| broker | stored publications/s, one room |",
        "|---|---:|",
        *(f"| {broker} | {rate:,.0f} |" for broker, rate in rates.items()),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for a smoke run")
    args = parser.parse_args()
    members, messages = (200, 100) if args.quick else (1000, 500)
    clients, missed = (200, 100) if args.quick else (1000, 100)
    stored = 500 if args.quick else 5000
    redis, nats = RedisServer(), NatsServer()
    backends = {"local": None, "redis": redis, "nats": nats}
    try:
        cost = history_cost(backends, members, messages)
        storms = recovery(backends, clients, missed)
        rates = store_rates(backends, stored)
    finally:
        redis.stop()
        nats.stop()
    lines = table(cost, members, messages, storms, clients, missed, rates, stored)
    print("\n".join(lines))
    write_section("delivery", lines)


if __name__ == "__main__":
    main()
