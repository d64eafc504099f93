"""A test kit for stelar-ws: a raw WebSocket peer (the handshake done by hand, to send what no
library would) and a real browser (Debian's Chromium driven by Playwright, no download).

Opt in from a ``conftest.py``::

    from stelar_ws.testing import browser, raw_ws  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import pytest_asyncio

from stelar_core.plugin_api import StelarServer

if TYPE_CHECKING:
    from playwright.async_api import Browser


class RawWsPeer:
    """A bare socket that did the WebSocket handshake by hand, to send what no library would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.response = response

    @staticmethod
    def frame(
        opcode: int,
        payload: bytes,
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool = True,
        length: int | None = None,
    ) -> bytes:
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        size = len(payload) if length is None else length
        mask_bit = 0x80 if mask else 0
        if size < 126:
            header = bytes((first, mask_bit | size))
        elif size < 1 << 16:
            header = bytes((first, mask_bit | 126)) + size.to_bytes(2, "big")
        else:
            header = bytes((first, mask_bit | 127)) + size.to_bytes(8, "big")
        if not mask:
            return header + payload
        key = os.urandom(4)
        return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_stelar(self, frame: bytes) -> None:
        await self.send(self.frame(0x2, frame))

    async def next_message(self, *, timeout: float = 5.0) -> tuple[int, bytes]:
        """The next frame from the server as (opcode, payload); server frames are unmasked."""
        async with asyncio.timeout(timeout):
            head = await self.reader.readexactly(2)
            size = head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(await self.reader.readexactly(2), "big")
            elif size == 127:
                size = int.from_bytes(await self.reader.readexactly(8), "big")
            return head[0] & 0x0F, await self.reader.readexactly(size)

    async def close_code(self, *, timeout: float = 5.0) -> int:
        """Read until the server's close frame; its status code."""
        while True:
            opcode, payload = await self.next_message(timeout=timeout)
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")

    def close(self) -> None:
        self.writer.close()


@pytest_asyncio.fixture
async def raw_ws() -> AsyncIterator[Callable[..., Awaitable[RawWsPeer]]]:
    """``await raw_ws(server, headers=None, path="/", pipelined=b"")``: a peer that sent the
    upgrade request to the server's ``ws`` transport (``peer.response`` is what came back)."""
    peers: list[RawWsPeer] = []

    async def connect(
        server: StelarServer,
        *,
        headers: dict[str, str] | None = None,
        path: str = "/",
        pipelined: bytes = b"",
    ) -> RawWsPeer:
        """``pipelined``: bytes sent with the request, before the server's 101."""
        reader, writer = await asyncio.open_connection("127.0.0.1", server.get_port("ws"))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{server.get_port('ws')}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: stelar.v1",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + pipelined)
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        peer = RawWsPeer(reader, writer, response)
        peers.append(peer)
        return peer

    yield connect
    for peer in peers:
        peer.close()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()
