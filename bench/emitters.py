"""The emitter scenario of bench/run (issue 28): messages into a room of 1,000 WebSocket members
sent from outside the server, beside the same messages sent from inside it.

Senders, each one caller sending one message at a time (the way a Django view or a Celery task
sends): a member's event relayed by a handler (``ctx.to``: inside the server); stelar-redis's
``Emitter`` through Redis; stelar-api's HTTP API, one command per request (also with several
callers at once, a web application's workers) and 100 per batch; and python-socketio's
write-only ``AsyncRedisManager`` into a python-socketio server. Each figure
runs from the first send to the last delivery; nothing may be lost or duplicated.

    bench/.venv/bin/python bench/emitters.py [--quick]   # prints the table; bench/run writes it
                                                           # into bench/RESULTS.md

Loopback only; every scenario is bounded and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import socketio
from cluster import RedisServer
from compare import ServerProcess, python, write_section
from loadgen import RELAYED, SocketIOPeer, Tally, WebSocketPeer, close_all, local, open_peers

from stelar_core.loadgen.peers import MESSAGE
from stelar_redis import Emitter

KEY = "bench-api-key-0123456789"
BATCH = 100
CALLERS = 8
DATA = json.loads(MESSAGE)

# Sends that many messages; returns the peers it opened, closed once the deliveries are counted.
Send = Callable[[int], Awaitable[list]]

NOTE = f"""One stelar node (WebSocket, asyncio's loop) pinned to CPU 0 on a Redis of its own, with 1,000
WebSocket members in one room; the senders and the members' load generator share the other core
with Redis. Every sender is one caller sending one message at a time and waiting for it to be
accepted (a handler's `ctx.to` does not wait: it is the ceiling), but for the row with
{CALLERS} callers at once. The HTTP API closes its
connection after each answer, so each request is a new TCP connection; a batch carries {BATCH}
`publish` commands. python-socketio: its server (aiohttp) with `AsyncRedisManager`, 1,000
Socket.IO members, and `AsyncRedisManager(url, write_only=True).emit()` as the sender. Messages/s
and deliveries/s run from the first send to the last delivery. `bench/.venv/bin/python bench/emitters.py`."""


async def into_room(
    peer: type, port: int, members: int, messages: int, send: Send, redis: RedisServer
) -> dict[str, float]:
    tally = Tally()
    group = await open_peers(peer, local(port), members, join=True)
    for member in group:
        member.tally = tally
    await asyncio.sleep(0.5)  # a benchmark, not a test: let the node's room subscription settle
    calls = redis.calls()
    started = time.perf_counter()
    opened = await send(messages)
    expected = members * messages
    await asyncio.wait_for(tally.wait_for(expected), 300)
    seconds = time.perf_counter() - started
    calls = redis.calls() - calls
    await asyncio.sleep(0.3)  # a short look for extra deliveries
    received = sum(member.counts[RELAYED] for member in group)
    await close_all([*group, *opened])
    if received != expected:
        raise AssertionError(f"lost or duplicated deliveries: {received:,} != {expected:,}")
    return {"messages": messages / seconds, "deliveries": expected / seconds, "redis": calls / messages}


def from_a_member(port: int) -> Send:
    async def send(messages: int) -> list:
        (publisher,) = await open_peers(WebSocketPeer, local(port), 1)
        publisher.publish(messages)
        return [publisher]

    return send


def from_the_emitter(url: str, prefix: str) -> Send:
    async def send(messages: int) -> list:
        async with Emitter(url, prefix) as emitter:
            for _ in range(messages):
                await emitter.to("room", "fan", DATA)
        return []

    return send


async def post(port: int, path: str, body: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    # As an HTTP client does: the head, then Content-Length bytes (not waiting for the close).
    answer = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line[15:]) for line in answer.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    writer.close()
    if not answer.startswith(b"HTTP/1.1 200 "):
        raise AssertionError(f"the API answered {answer[:200]!r}")


def from_the_api(port: int, batch: int, callers: int = 1) -> Send:
    command = {"room": "room", "event": "fan", "data": DATA}

    async def caller(body: bytes, count: int) -> None:
        for _ in range(count):
            await post(port, "/api/publish", body)

    async def send(messages: int) -> list:
        if batch == 1:
            body = json.dumps(command).encode()
            shares = [messages // callers + (index < messages % callers) for index in range(callers)]
            await asyncio.gather(*(caller(body, share) for share in shares))
            return []
        for start in range(0, messages, batch):
            count = min(batch, messages - start)
            commands = [{"method": "publish", "params": command}] * count
            await post(port, "/api/batch", json.dumps({"commands": commands}).encode())
        return []

    return send


def from_socketio_manager(url: str) -> Send:
    async def send(messages: int) -> list:
        manager = socketio.AsyncRedisManager(url, write_only=True)
        for _ in range(messages):
            await manager.emit("fan", DATA, room="room")
        return []

    return send


def run(redis: RedisServer, members: int, messages: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    node = ServerProcess(
        python("stelar_relay.py", "ws", "asyncio", "--redis", redis.url, prefix, "--api", KEY)
    )
    try:
        senders = {
            "stelar, inside the server (a handler's ctx.to)": from_a_member(node.port),
            "stelar-redis Emitter (async)": from_the_emitter(redis.url, prefix),
            "stelar-api, one command per request": from_the_api(node.port, 1),
            f"stelar-api, one command per request, {CALLERS} callers at once": from_the_api(
                node.port, 1, CALLERS
            ),
            f"stelar-api, batches of {BATCH}": from_the_api(node.port, BATCH),
        }
        for name, send in senders.items():
            results[name] = asyncio.run(into_room(WebSocketPeer, node.port, members, messages, send, redis))
    finally:
        node.stop()
    peer = ServerProcess(python("socketio_relay.py", "--redis", redis.url))
    try:
        name = "python-socketio, AsyncRedisManager(write_only=True)"
        send = from_socketio_manager(redis.url)
        results[name] = asyncio.run(into_room(SocketIOPeer, peer.port, members, messages, send, redis))
    finally:
        peer.stop()
    return results


def table(results: dict[str, dict[str, float]], members: int, messages: int) -> list[str]:
    lines = [
        "## From outside the server: emitter and server API",
        "",
        f"{messages:,} messages into a room of {members:,} WebSocket members.",
        "",
        "| sender | messages/s | deliveries/s | Redis calls per message |",
        "|---|---:|---:|---:|",
    ]
    for name, figures in results.items():
        lines.append(
            f"| {name} | {figures['messages']:,.0f} | {figures['deliveries']:,.0f} | {figures['redis']:.1f} |"
        )
    return [*lines, "", NOTE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for a smoke run")
    args = parser.parse_args()
    members, messages = (200, 100) if args.quick else (1000, 500)
    redis = RedisServer()
    try:
        results = run(redis, members, messages)
    finally:
        redis.stop()
    lines = table(results, members, messages)
    print("\n".join(lines))
    write_section("emitters", lines)


if __name__ == "__main__":
    main()
