"""A raw TCP peer of a stelar server: length-prefixed frames written and read byte by byte, for
what a real client would never send (and a peer that stops reading). The ``raw_tcp`` fixture of
``stelar_core.testing.pytest_plugin`` opens them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from stelar_core.protocol import (
    Frame,
    FrameType,
    StreamParser,
    decode_frame,
    dump_json,
    encode_frame,
    length_prefixed,
)


class RawTcpPeer:
    """A bare socket speaking length-prefixed frames byte by byte, for what a real client would
    never send. Reads are explicit, so it can also play a peer that does not read."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = StreamParser(64 * 1024 * 1024)
        self.frames: list[Frame] = []

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_frame(
        self, kind: FrameType, event: str = "", payload: bytes = b"", ack_id: int | None = None
    ) -> None:
        await self.write(length_prefixed(encode_frame(kind, event, payload, ack_id)))

    async def handshake(self) -> dict[str, Any]:
        await self.send_frame(FrameType.CONNECT, payload=dump_json({"auth": {}}))
        frame = await self.next_frame()
        assert frame.type is FrameType.CONNECT, frame
        welcome: dict[str, Any] = frame.json()
        return welcome

    async def next_frame(self, *, timeout: float = 5.0, skip_pings: bool = True) -> Frame:
        async with asyncio.timeout(timeout):
            while True:
                while self.frames:
                    frame = self.frames.pop(0)
                    if not (skip_pings and frame.type is FrameType.PING):
                        return frame
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("connection closed")
                self.parser.receive_data(data)
                while (raw := self.parser.next_frame()) is not None:
                    self.frames.append(decode_frame(raw))

    async def until_closed(self, *, timeout: float = 5.0) -> list[Frame]:
        """Every frame until the server closes the connection."""
        received = []
        try:
            while True:
                received.append(await self.next_frame(timeout=timeout))
        except EOFError:
            return received

    def close(self) -> None:
        self.writer.close()


@pytest_asyncio.fixture
async def raw_tcp() -> AsyncIterator[Callable[..., Awaitable[RawTcpPeer]]]:
    """``await raw_tcp(server, local_address=None, receive_buffer=None)``: a peer connected to
    the server's ``tcp`` transport (closed after the test)."""
    peers: list[RawTcpPeer] = []

    async def connect(
        server: Any, *, local_address: str | None = None, receive_buffer: int | None = None
    ) -> RawTcpPeer:
        port = server.get_port("tcp")
        sock_options: dict[str, Any] = {"local_addr": (local_address, 0)} if local_address else {}
        reader, writer = await asyncio.open_connection("127.0.0.1", port, **sock_options)
        if receive_buffer is not None:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        peer = RawTcpPeer(reader, writer)
        peers.append(peer)
        return peer

    yield connect
    for peer in peers:
        peer.close()
