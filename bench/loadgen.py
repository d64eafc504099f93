"""The load generator of bench/compare.py: raw-socket peers and the scenarios they play.

Peers count frames by their first bytes without decoding them, so the generator is not the
bottleneck; scenarios check that nothing is lost or duplicated. Three wire dialects, one per kind
of server: stelar frames length-prefixed over TCP, stelar frames in binary WebSocket messages, and
Socket.IO (Engine.IO 4) packets in text WebSocket messages. Every peer offers the same four
operations (hello, join, request, publish) and counts the same four answers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import ssl
import struct
import time
from collections.abc import Sequence

# What a peer counts.
RELAYED, ANSWER, WELCOME, JOINED = range(4)
MESSAGE = b'{"user":"ann","room":"general","text":"hello there, how is everyone doing today?","n":12345}'
LENGTH = struct.Struct(">I")


def stelar_frame(kind: int, event: bytes, payload: bytes = b"", ack_id: int | None = None) -> bytes:
    body = bytes([kind]) + len(event).to_bytes(2, "big") + event
    if ack_id is not None:
        body += ack_id.to_bytes(4, "big")
    return body + payload


# stelar's frame type byte -> what it counts as (0 event, 5 ack answer, 6 connect, 8 join answer).
STELAR_KINDS = {0: RELAYED, 5: ANSWER, 6: WELCOME, 8: JOINED}


class Tally:
    """Deliveries counted across many peers; ``wait_for(total)`` resolves when that many
    arrived. One shared counter keeps the generator's cost per delivery to an addition."""

    def __init__(self) -> None:
        self.count = 0
        self._target = 0
        self._waiter: asyncio.Future[None] | None = None

    def add(self, count: int) -> None:
        self.count += count
        if self._waiter is not None and self.count >= self._target and not self._waiter.done():
            self._waiter.set_result(None)

    def wait_for(self, total: int) -> asyncio.Future[None]:
        self._target = total
        self._waiter = asyncio.get_running_loop().create_future()
        if self.count >= total:
            self._waiter.set_result(None)
        return self._waiter


class Peer(asyncio.Protocol):
    """Counts what arrives per kind; ``expect`` resolves when enough of a kind has arrived."""

    tally: Tally | None = None  # set on the peers of a fan-out to count relayed frames together

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.counts = [0] * 4
        self.kind = -1
        self.wanted = 0
        self.waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"server closed the connection: {exc}"))

    def expect(self, kind: int, wanted: int) -> asyncio.Future[None]:
        self.kind, self.wanted = kind, wanted
        self.waiter = asyncio.get_running_loop().create_future()
        if self.counts[kind] >= wanted:
            self.waiter.set_result(None)
        return self.waiter

    def data_received(self, data):
        self.buffer += data
        relayed = self.counts[RELAYED]
        self.parse()
        if self.tally is not None and self.counts[RELAYED] != relayed:
            self.tally.add(self.counts[RELAYED] - relayed)
        if self.waiter is not None and self.counts[self.kind] >= self.wanted and not self.waiter.done():
            self.waiter.set_result(None)

    async def opened(self) -> None:
        """Until the peer can send its hello (after the WebSocket upgrade where there is one)."""

    def hello(self) -> None:
        self.send(stelar_frame(6, b"", b'{"auth":{}}'))

    def join(self) -> None:
        self.send(stelar_frame(8, b"room"))

    def request(self) -> None:
        self.send(stelar_frame(4, b"echo", MESSAGE, ack_id=1))

    def publish(self, count: int) -> None:
        self.send_many(stelar_frame(0, b"fan", MESSAGE), count)

    def send(self, message: bytes) -> None:
        self.send_many(message, 1)

    def send_many(self, message: bytes, count: int) -> None:
        raise NotImplementedError

    def parse(self) -> None:
        raise NotImplementedError


class LengthPrefixedPeer(Peer):
    """stelar over TCP."""

    def send_many(self, message: bytes, count: int) -> None:
        self.transport.write((LENGTH.pack(len(message)) + message) * count)

    def parse(self) -> None:
        buffer, counts = self.buffer, self.counts
        offset, end = 0, len(buffer)
        while end - offset >= 4:
            (size,) = LENGTH.unpack_from(buffer, offset)
            if end - offset - 4 < size:
                break
            kind = STELAR_KINDS.get(buffer[offset + 4])
            if kind is not None:
                counts[kind] += 1
            offset += 4 + size
        del buffer[:offset]


MASK = b"\x00\x00\x00\x00"  # a zero mask: valid, and the payload needs no XOR


def ws_client_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + MASK + payload


class WebSocketPeer(Peer):
    """stelar over WebSocket: hand-made upgrade, masked binary frames out, counting frames in."""

    path = "/"
    extra_headers = "Sec-WebSocket-Protocol: stelar.v1\r\n"
    opcode = 0x2

    def __init__(self) -> None:
        super().__init__()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        super().connection_made(transport)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"{self.extra_headers}\r\n"
            ).encode()
        )

    def connection_lost(self, exc):
        super().connection_lost(exc)
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(f"closed before the upgrade: {exc}"))

    async def opened(self) -> None:
        await self.upgraded

    def send_many(self, message: bytes, count: int) -> None:
        self.transport.write(ws_client_frame(message, self.opcode) * count)

    def parse(self) -> None:
        buffer = self.buffer
        if not self.upgraded.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in buffer[:end]:
                self.upgraded.set_exception(ConnectionError(bytes(buffer[:end]).decode()))
                return
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
            if size and buffer[offset] & 0x0F in (0x1, 0x2):
                self.count_message(buffer, offset + head)
            offset += head + size
        del buffer[:offset]

    def count_message(self, buffer: bytearray, start: int) -> None:
        kind = STELAR_KINDS.get(buffer[start])
        if kind is not None:
            self.counts[kind] += 1


class SocketIOPeer(WebSocketPeer):
    """Socket.IO 4 (Engine.IO 4) over WebSocket only: text packets. ``40`` connects to the main
    namespace, ``42["event",data]`` is an event, ``42<id>[...]`` asks for an ACK that comes back
    as ``43<id>[...]``. The join asks with ACK id 0, requests with id 1, so answers are told
    apart by their first three bytes. Engine.IO pings (``2``) are answered (``3``)."""

    path = "/socket.io/?EIO=4&transport=websocket"
    extra_headers = ""
    opcode = 0x1

    def hello(self) -> None:
        self.send(b"40")

    def join(self) -> None:
        self.send(b'420["join","room"]')

    def request(self) -> None:
        self.send(b'421["echo",' + MESSAGE + b"]")

    def publish(self, count: int) -> None:
        self.send_many(b'42["fan",' + MESSAGE + b"]", count)

    def count_message(self, buffer: bytearray, start: int) -> None:
        head = bytes(buffer[start : start + 3])
        if head.startswith(b"42"):
            self.counts[RELAYED] += 1
        elif head == b"431":
            self.counts[ANSWER] += 1
        elif head == b"430":
            self.counts[JOINED] += 1
        elif head.startswith(b"40"):
            self.counts[WELCOME] += 1
        elif head.startswith(b"2"):
            self.send(b"3")


# ---------------------------------------------------------------------------------- scenarios


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Window:
    """The timed part of a scenario: wall time, and the server's and the generator's CPU use
    over it (1.0 = one core busy; a generator near 1.0 would be the bottleneck). With
    ``profiled``, the server is told by SIGUSR1/SIGUSR2 to profile just this part."""

    def __init__(self, server_pid: int, profiled: bool = False) -> None:
        self.pid = server_pid
        self.profiled = profiled

    def start(self) -> None:
        if self.profiled:
            os.kill(self.pid, signal.SIGUSR1)
        self.began = time.perf_counter()
        self.server_cpu, self.own_cpu = cpu_seconds(self.pid), time.process_time()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.began
        if self.profiled:
            os.kill(self.pid, signal.SIGUSR2)
        return {
            "seconds": wall,
            "server_cpu": (cpu_seconds(self.pid) - self.server_cpu) / wall,
            "generator_cpu": (time.process_time() - self.own_cpu) / wall,
        }


async def open_peers(kind: type[Peer], port: int, count: int, *, join: bool = False) -> list[Peer]:
    loop = asyncio.get_running_loop()
    peers: list[Peer] = []
    for start in range(0, count, 200):  # in batches, under the listen backlog
        batch = await asyncio.gather(
            *(loop.create_connection(kind, "127.0.0.1", port) for _ in range(min(200, count - start)))
        )
        batch_peers = [peer for _, peer in batch]
        await asyncio.wait_for(asyncio.gather(*(peer.opened() for peer in batch_peers)), 60)
        for peer in batch_peers:
            peer.hello()
        await asyncio.wait_for(asyncio.gather(*(peer.expect(WELCOME, 1) for peer in batch_peers)), 60)
        if join:  # after the welcome: a Socket.IO server closes on an event before its connect
            for peer in batch_peers:
                peer.join()
            await asyncio.wait_for(asyncio.gather(*(peer.expect(JOINED, 1) for peer in batch_peers)), 60)
        peers.extend(batch_peers)
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
    kind: type[Peer], port: int, window: Window, clients: int, per_client: int
) -> dict[str, float]:
    peers = await open_peers(kind, port, clients)
    latencies: list[float] = []

    async def run(peer: Peer) -> None:
        for n in range(1, per_client + 1):
            started = time.perf_counter()
            peer.request()
            await peer.expect(ANSWER, n)
            latencies.append(time.perf_counter() - started)

    window.start()
    await asyncio.wait_for(asyncio.gather(*(run(peer) for peer in peers)), 120)
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
    kind: type[Peer], port: int, window: Window, members: int, messages: int, paced: bool
) -> dict[str, float]:
    """``messages`` events published to a room of ``members``: in one burst, or paced (the next
    published when every member has the previous one; p50/p99 of that delivery time)."""
    tally = Tally()
    peers = await open_peers(kind, port, members, join=True)
    for peer in peers:
        peer.tally = tally
    (publisher,) = await open_peers(kind, port, 1)
    rounds: list[float] = []
    window.start()
    if paced:
        for n in range(1, messages + 1):
            started = time.perf_counter()
            publisher.publish(1)
            await asyncio.wait_for(tally.wait_for(n * members), 60)
            rounds.append(time.perf_counter() - started)
    else:
        publisher.publish(messages)
        await asyncio.wait_for(tally.wait_for(members * messages), 120)
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


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def idle_memory(kind: type[Peer], port: int, window: Window, connections: int) -> dict[str, float]:
    await close_all(await open_peers(kind, port, 50))  # warm up allocators first
    await asyncio.sleep(0.5)  # settle before the baseline reading (a benchmark, not a test)
    before = rss(window.pid)
    window.start()
    peers = await open_peers(kind, port, connections)
    measured = window.stop()
    await asyncio.sleep(0.5)  # idle means idle: let lazy allocation happen
    grown = rss(window.pid) - before
    await close_all(peers)
    return {**measured, "rate": grown / connections}


async def churn(
    kind: type[Peer],
    port: int,
    window: Window,
    cycles: int,
    concurrency: int,
    tls: ssl.SSLContext | None = None,
) -> dict[str, float]:
    """Connections per second that connect (through a TLS handshake with ``tls``), finish the
    stelar handshake and close."""
    loop = asyncio.get_running_loop()
    left = cycles

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            _, peer = await loop.create_connection(
                kind, "127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1" if tls else None
            )
            await peer.opened()
            peer.hello()
            await peer.expect(WELCOME, 1)
            await close_all([peer])

    window.start()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 120)
    measured = window.stop()
    return {**measured, "rate": cycles / measured["seconds"]}
