"""Benchmark of the hub over the in-memory transport: the baseline later transports compare to.

    python bench/hub.py            # about 20 seconds, prints a markdown table

Scenarios (medians of --repeat runs):
  events/s      one client sends events to a handler that counts them; again with a typed
                handler (``fn(ctx, msg: Message)``, an attrs class): the typed path's cost
  fan-out       deliveries/s of room broadcasts to 1,000 members
  ACK 1 / 50    request/response round trips/s, 1 client and 50 concurrent clients
It also times JSON encode+decode of a ~100-byte message with the standard library and with
orjson (the core's codec), since the core's dependency on a fast JSON library must be earned.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs
import orjson

from stelar_core import StelarServer
from stelar_core.protocol import FrameType, dump_json, encode_frame
from stelar_core.transports.base import ConnectOptions
from stelar_core.transports.memory import connect_memory

MESSAGE = {"user": "ann", "room": "general", "text": "hello there, how is everyone doing today?", "n": 12345}
CONNECT = encode_frame(FrameType.CONNECT, "", dump_json({"auth": {}}))


class CountingPeer:
    """A client end that counts frames without decoding them (so it is not the bottleneck)."""

    def __init__(self, expected: int = 0) -> None:
        self.count = 0
        self.expected = expected
        self.done = asyncio.get_running_loop().create_future()
        self.on_frame: Callable[[bytes], None] | None = None

    def frame_received(self, frame: bytes) -> None:
        if frame[0] == FrameType.PING:
            return
        if self.on_frame is not None:
            self.on_frame(frame)
            return
        self.count += 1
        if self.count == self.expected and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, code: int, reason: str) -> None:
        """Nothing to release."""


async def open_peer(server: StelarServer, peer: CountingPeer):
    link = await connect_memory(
        server.addresses["memory"][0], peer, ConnectOptions(local_address=f"10.0.{id(peer) % 250}.1")
    )
    link.send(CONNECT)
    return link


def new_server(**options: Any) -> StelarServer:
    return StelarServer(
        transports=["memory"],
        rate_limit=None,
        max_connections_per_ip=100_000,
        max_queued_messages=100_000,
        **options,
    )


@attrs.frozen
class Message:
    """MESSAGE as a typed handler declares it."""

    user: str
    room: str
    text: str = attrs.field(validator=attrs.validators.max_len(2000))
    n: int = 0


async def events_per_second(count: int, typed: bool = False) -> float:
    server = new_server()
    received = 0
    finished = asyncio.get_running_loop().create_future()

    def count_one() -> None:
        nonlocal received
        received += 1
        if received == count:
            finished.set_result(None)

    if typed:

        @server.on("chat")
        def typed_chat(ctx, msg: Message) -> None:
            count_one()

    else:

        @server.on("chat")
        def chat(ctx):
            count_one()

    async with server:
        peer = CountingPeer(expected=1)
        link = await open_peer(server, peer)
        await peer.done
        frame = encode_frame(FrameType.JSON, "chat", dump_json(MESSAGE))
        start = time.perf_counter()
        for _ in range(count):
            link.send(frame)
        await finished
        return count / (time.perf_counter() - start)


async def fanout_per_second(members: int, broadcasts: int, **options: Any) -> float:
    server = new_server(**options)
    async with server:
        peers = [CountingPeer(expected=1) for _ in range(members)]
        for peer in peers:
            await open_peer(server, peer)
        await asyncio.gather(*(peer.done for peer in peers))
        for session in list(server.hub.directory.open.values()):
            server.hub.rooms.join(session, "room")
        for peer in peers:
            peer.count, peer.expected = 0, broadcasts
            peer.done = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        for _ in range(broadcasts):
            server.to("room", "chat", MESSAGE)
        await asyncio.gather(*(peer.done for peer in peers))
        return members * broadcasts / (time.perf_counter() - start)


async def ack_round_trips(clients: int, per_client: int, **options: Any) -> float:
    server = new_server(**options)
    server.on_ack("echo", lambda ctx: ctx.data)
    async with server:
        request = encode_frame(FrameType.ACK_REQUEST, "echo", dump_json(MESSAGE), 1)

        async def one_client() -> None:
            peer = CountingPeer(expected=1)
            link = await open_peer(server, peer)
            await peer.done
            connected.append(link)
            if len(connected) == clients:
                all_connected.set()
            answered: asyncio.Future[None] | None = None

            def on_frame(frame: bytes) -> None:
                if answered is not None and not answered.done():
                    answered.set_result(None)

            peer.on_frame = on_frame
            await ready.wait()
            for _ in range(per_client):
                answered = asyncio.get_running_loop().create_future()
                link.send(request)
                await answered

        ready, all_connected = asyncio.Event(), asyncio.Event()
        connected: list[object] = []
        tasks = [asyncio.ensure_future(one_client()) for _ in range(clients)]
        await all_connected.wait()
        start = time.perf_counter()
        ready.set()
        await asyncio.gather(*tasks)
        return clients * per_client / (time.perf_counter() - start)


def json_cost(iterations: int = 200_000) -> dict[str, float]:
    """Microseconds per encode+decode of MESSAGE."""
    codecs = {
        "stdlib json": (lambda: json.loads(json.dumps(MESSAGE, separators=(",", ":")))),
        "orjson (stelar's codec)": (lambda: orjson.loads(orjson.dumps(MESSAGE))),
    }
    costs = {}
    for name, round_trip in codecs.items():
        start = time.perf_counter()
        for _ in range(iterations):
            round_trip()
        costs[name] = (time.perf_counter() - start) / iterations * 1e6
    return costs


def median_of(repeat: int, make: Callable[[], float]) -> tuple[float, float, float]:
    results = [asyncio.run(make()) for _ in range(repeat)]  # type: ignore[arg-type]
    return statistics.median(results), min(results), max(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    args = parser.parse_args()
    n = lambda base: max(1, int(base * args.scale))  # noqa: E731
    rows = [
        ("events dispatched/s (1 client)", median_of(args.repeat, lambda: events_per_second(n(200_000)))),
        (
            "events dispatched/s (1 client, typed handler: an attrs class of 4 fields)",
            median_of(args.repeat, lambda: events_per_second(n(200_000), typed=True)),
        ),
        (
            "fan-out deliveries/s (1,000 members)",
            median_of(args.repeat, lambda: fanout_per_second(1000, n(200))),
        ),
        ("ACK round trips/s (1 client)", median_of(args.repeat, lambda: ack_round_trips(1, n(20_000)))),
        ("ACK round trips/s (50 clients)", median_of(args.repeat, lambda: ack_round_trips(50, n(1_000)))),
    ]
    python = sys.version.split()[0]
    print(f"stelar hub over the in-memory transport, Python {python}, medians of {args.repeat}\n")
    print("| scenario | median | min | max |")
    print("|---|---:|---:|---:|")
    for name, (median, low, high) in rows:
        print(f"| {name} | {median:,.0f} | {low:,.0f} | {high:,.0f} |")
    untyped, typed = rows[0][1][0], rows[1][1][0]
    print(f"\nThe typed path's cost: {(1 / typed - 1 / untyped) * 1e6:.2f} µs per message (structuring")
    print("the payload with cattrs and running its validator), from the two events rows' medians.")
    print("\n| JSON encode+decode of a ~100-byte message | µs |")
    print("|---|---:|")
    for name, micros in json_cost().items():
        print(f"| {name} | {micros:.2f} |")


if __name__ == "__main__":
    main()
