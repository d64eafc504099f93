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
import sys
import time
import uuid
from asyncio.subprocess import PIPE
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

# Sends that many messages (once ``prepare`` is done); returns what to finish once the deliveries
# are counted (the peers it opened, its process).
Go = Callable[[int], Awaitable[list[Callable[[], Awaitable[object]]]]]
Prepare = Callable[[], Awaitable[Go]]

NOTE = f"""One stelar node (WebSocket, asyncio's loop) pinned to CPU 0 on a Redis of its own, with 1,000
WebSocket members in one room; the senders (each in a process of its own, started before the
clock runs), the members' load generator and Redis share the other core. Every sender is one
caller sending one message at a time and waiting for it to be accepted (a handler's `ctx.to`
does not wait: it is the ceiling), but for the row with {CALLERS} callers at once. The HTTP API
closes its connection after each answer, so each request is a new TCP connection; a batch
carries {BATCH} `publish` commands. python-socketio: its server (aiohttp) with
`AsyncRedisManager`, 1,000 Socket.IO members, and `AsyncRedisManager(url, write_only=True).emit()`
as the sender. Messages/s and deliveries/s run from the first send to the last delivery.
Why one API caller is slow: it waits for each answer, and the node answers the next request only
after writing the previous message to its 1,000 members, each delivery its own write (a cProfile
of the node: ~90% of its time in `socket.send`); the emitter does not wait for the node, and
concurrent callers or batches put several messages in one loop turn, whose deliveries to a
member leave in one write. `bench/.venv/bin/python bench/emitters.py`."""


async def into_room(
    peer: type,
    port: int,
    members: int,
    messages: int,
    prepare: Prepare,
    redis: RedisServer,
) -> dict[str, float]:
    tally = Tally()
    group = await open_peers(peer, local(port), members, join=True)
    for member in group:
        member.tally = tally
    go = await prepare()
    await asyncio.sleep(0.5)  # a benchmark, not a test: let the node's room subscription settle
    calls = redis.calls()
    started = time.perf_counter()
    finish = await go(messages)
    expected = members * messages
    await asyncio.wait_for(tally.wait_for(expected), 300)
    seconds = time.perf_counter() - started
    calls = redis.calls() - calls
    await asyncio.sleep(0.3)  # a short look for extra deliveries
    received = sum(member.counts[RELAYED] for member in group)
    await close_all(group)
    for step in finish:
        await step()
    if received != expected:
        raise AssertionError(f"lost or duplicated deliveries: {received:,} != {expected:,}")
    return {"messages": messages / seconds, "deliveries": expected / seconds, "redis": calls / messages}


def from_a_member(port: int) -> Prepare:
    async def prepare() -> Go:
        (publisher,) = await open_peers(WebSocketPeer, local(port), 1)

        async def go(messages: int) -> list[Callable[[], Awaitable[object]]]:
            publisher.publish(messages)
            return [lambda: close_all([publisher])]

        return go

    return prepare


def in_a_process(*arguments: str) -> Prepare:
    """A sender of this file (``--send``) in a process of its own: ready once its imports and
    connections are made, then told to go; done when it has sent everything."""

    async def prepare() -> Go:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--send", *arguments, stdin=PIPE, stdout=PIPE
        )
        assert process.stdin is not None and process.stdout is not None
        if await process.stdout.readline() != b"READY\n":
            raise RuntimeError(f"the sender {arguments} did not start")

        async def go(messages: int) -> list[Callable[[], Awaitable[object]]]:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(f"{messages}\n".encode())
            await process.stdin.drain()
            if await process.stdout.readline() != b"DONE\n":
                raise RuntimeError(f"the sender {arguments} failed")
            return [process.wait]

        return go

    return prepare


# ------------------------------------------------------------------ the senders, in their process


async def emitter_sends(messages: int, url: str, prefix: str) -> None:
    async with Emitter(url, prefix) as emitter:
        for _ in range(messages):
            await emitter.to("room", "fan", DATA)


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


async def api_sends(messages: int, port: str, batch: str, callers: str) -> None:
    command = {"room": "room", "event": "fan", "data": DATA}
    size, parallel = int(batch), int(callers)
    if size == 1:
        body = json.dumps(command).encode()

        async def caller(count: int) -> None:
            for _ in range(count):
                await post(int(port), "/api/publish", body)

        shares = [messages // parallel + (index < messages % parallel) for index in range(parallel)]
        await asyncio.gather(*(caller(share) for share in shares))
        return
    for start in range(0, messages, size):
        commands = [{"method": "publish", "params": command}] * min(size, messages - start)
        await post(int(port), "/api/batch", json.dumps({"commands": commands}).encode())


async def socketio_sends(messages: int, url: str) -> None:
    manager = socketio.AsyncRedisManager(url, write_only=True)
    for _ in range(messages):
        await manager.emit("fan", DATA, room="room")


SENDERS: dict[str, Callable[..., Awaitable[None]]] = {
    "emitter": emitter_sends,
    "api": api_sends,
    "socketio": socketio_sends,
}


def send(kind: str, *arguments: str) -> None:
    print("READY", flush=True)
    messages = int(sys.stdin.readline())
    asyncio.run(SENDERS[kind](messages, *arguments))
    print("DONE", flush=True)


# ------------------------------------------------------------------ the scenario


def run(redis: RedisServer, members: int, messages: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    node = ServerProcess(
        python("stelar_relay.py", "ws", "asyncio", "--redis", redis.url, prefix, "--api", KEY)
    )
    port = str(node.port)
    try:
        senders = {
            "stelar, inside the server (a handler's ctx.to)": from_a_member(node.port),
            "stelar-redis Emitter (async)": in_a_process("emitter", redis.url, prefix),
            "stelar-api, one command per request": in_a_process("api", port, "1", "1"),
            f"stelar-api, one command per request, {CALLERS} callers": in_a_process(
                "api", port, "1", str(CALLERS)
            ),
            f"stelar-api, batches of {BATCH}": in_a_process("api", port, str(BATCH), "1"),
        }
        for name, prepare in senders.items():
            results[name] = asyncio.run(
                into_room(WebSocketPeer, node.port, members, messages, prepare, redis)
            )
    finally:
        node.stop()
    peer = ServerProcess(python("socketio_relay.py", "--redis", redis.url))
    try:
        name = "python-socketio, AsyncRedisManager(write_only=True)"
        prepare = in_a_process("socketio", redis.url)
        results[name] = asyncio.run(into_room(SocketIOPeer, peer.port, members, messages, prepare, redis))
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
    if sys.argv[1:2] == ["--send"]:  # a sender's own process (in_a_process)
        send(*sys.argv[2:])
        return
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
