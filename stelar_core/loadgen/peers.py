"""Raw-socket peers that speak stelar's protocol, for load generation.

A peer counts frames by their first bytes without decoding them, so the generator is not the
bottleneck. Two wire dialects: stelar frames length-prefixed over TCP, and stelar frames in
binary WebSocket messages (a hand-made upgrade, masked frames). Every peer offers the same four
operations (hello, join, request, publish) and counts the same four answers, so a third dialect
(bench/loadgen.py's Socket.IO peer) plays the same scenarios.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import struct
from typing import cast

import attrs


@attrs.frozen
class Target:
    """Where peers connect and the names the scenarios use there: a room to join, the event a
    publisher sends (the server relays it to the room), the request the server answers (an echo).
    ``path`` is the WebSocket upgrade's (``None``: the peer's own)."""

    port: int
    host: str = "127.0.0.1"
    path: str | None = None
    tls: ssl.SSLContext | None = None
    room: str = "room"
    event: str = "fan"
    request: str = "echo"

    async def connect(self, kind: type[Peer]) -> Peer:
        hostname = self.host if self.tls else None
        _, peer = await asyncio.get_running_loop().create_connection(
            lambda: kind(self), self.host, self.port, ssl=self.tls, server_hostname=hostname
        )
        return peer


# What a peer counts.
RELAYED, ANSWER, WELCOME, JOINED = range(4)
MESSAGE = b'{"user":"ann","room":"general","text":"hello there, how is everyone doing today?","n":12345}'
LENGTH = struct.Struct(">I")


def stelar_frame(kind: int, event: bytes, payload: bytes = b"", ack_id: int | None = None) -> bytes:
    body = bytes([kind]) + len(event).to_bytes(2, "big") + event
    if ack_id is not None:
        body += ack_id.to_bytes(4, "big")
    return body + payload


# stelar's frame type byte -> what it counts as (0 event, 11 an event of a room with history,
# 5 ack answer, 6 connect, 8 join answer).
STELAR_KINDS = {0: RELAYED, 11: RELAYED, 5: ANSWER, 6: WELCOME, 8: JOINED}
DISCONNECT_FRAME, ERROR_FRAME = 7, 10
GOODBYES = (DISCONNECT_FRAME, ERROR_FRAME)


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

    def __init__(self, target: Target) -> None:
        self.target = target
        self.buffer = bytearray()
        self.counts = [0] * 4
        self.kind = -1
        self.wanted = 0
        self.waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.error = ""  # the code of the last error frame the server sent (rate_limited...)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            after = f" ({self.error})" if self.error else ""
            self.waiter.set_exception(ConnectionError(f"server closed the connection{after}: {exc}"))

    def saw_error(self, frame: bytes | bytearray, start: int, end: int) -> None:
        """Keep why the server is closing, from an error frame (its code) or a disconnect frame
        (its reason) between ``start`` and ``end``: rare frames, and what a failed run must say
        (a rate limit, a payload limit)."""
        size = int.from_bytes(frame[start + 1 : start + 3], "big")
        event = bytes(frame[start + 3 : start + 3 + size]).decode(errors="replace")
        if frame[start] == ERROR_FRAME:
            self.error = event
            return
        with contextlib.suppress(ValueError, KeyError, TypeError):  # not the disconnect expected
            self.error = self.error or str(json.loads(bytes(frame[start + 3 + size : end]))["reason"])

    def expect(self, kind: int, wanted: int) -> asyncio.Future[None]:
        self.kind, self.wanted = kind, wanted
        self.waiter = asyncio.get_running_loop().create_future()
        if self.counts[kind] >= wanted:
            self.waiter.set_result(None)
        return self.waiter

    def data_received(self, data: bytes) -> None:
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
        self.send(stelar_frame(8, self.target.room.encode()))

    def request(self) -> None:
        self.send(stelar_frame(4, self.target.request.encode(), MESSAGE, ack_id=1))

    def publish(self, count: int) -> None:
        self.send_many(stelar_frame(0, self.target.event.encode(), MESSAGE), count)

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
            elif buffer[offset + 4] in GOODBYES:
                self.saw_error(buffer, offset + 4, offset + 4 + size)
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

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.target.path or self.path} HTTP/1.1\r\nHost: {self.target.host}\r\n"
                "Upgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"{self.extra_headers}\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
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
                self.count_message(buffer, offset + head, offset + head + size)
            offset += head + size
        del buffer[:offset]

    def count_message(self, buffer: bytearray, start: int, end: int) -> None:
        kind = STELAR_KINDS.get(buffer[start])
        if kind is not None:
            self.counts[kind] += 1
        elif buffer[start] in GOODBYES:
            self.saw_error(buffer, start, end)
