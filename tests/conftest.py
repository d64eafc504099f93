"""Helpers shared by the network tests."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop
from hypothesis import settings

from stelar_core.protocol import (
    Frame,
    FrameType,
    StreamParser,
    decode_frame,
    dump_json,
    encode_frame,
    length_prefixed,
)

# The real redis-server and node processes of the stelar-redis tests.
pytest_plugins = ["tests.redis_support"]

# Examples are cheap; a loaded 2-core machine is not a reason to fail one.
settings.register_profile("stelar", deadline=None)
settings.load_profile("stelar")


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

    async def send_frame(self, kind: FrameType, event: str = "", payload: bytes = b"", ack_id=None) -> None:
        await self.write(length_prefixed(encode_frame(kind, event, payload, ack_id)))

    async def handshake(self) -> dict:
        await self.send_frame(FrameType.CONNECT, payload=dump_json({"auth": {}}))
        frame = await self.next_frame()
        assert frame.type is FrameType.CONNECT, frame
        return frame.json()

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


@pytest.fixture
async def raw_tcp():
    peers: list[RawTcpPeer] = []

    async def connect(
        server, *, local_address: str | None = None, receive_buffer: int | None = None
    ) -> RawTcpPeer:
        port = server.get_port("tcp")
        sock_options = {"local_addr": (local_address, 0)} if local_address else {}
        reader, writer = await asyncio.open_connection("127.0.0.1", port, **sock_options)
        if receive_buffer is not None:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        peer = RawTcpPeer(reader, writer)
        peers.append(peer)
        return peer

    yield connect
    for peer in peers:
        peer.close()


class GatedTracker:
    """An IP tracker whose check waits until the test opens ``gate``: admission stays pending."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()

    async def check(self, ip, limit):
        self.asked.set()
        await self.gate.wait()
        return True

    def add(self, ip):
        pass

    def remove(self, ip):
        pass

    def count(self, ip):
        return 0


@pytest.fixture
def gated_tracker() -> GatedTracker:
    return GatedTracker()


class RawWsPeer:
    """A bare socket that did the WebSocket handshake by hand, to send what no library would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.response = response

    @staticmethod
    def frame(
        opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True, length=None
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


@pytest.fixture
async def raw_ws():
    peers: list[RawWsPeer] = []

    async def connect(
        server, *, headers: dict[str, str] | None = None, path: str = "/", pipelined: bytes = b""
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


def pytest_asyncio_loop_factories(config, item):
    """Every async test runs on asyncio's loop and on uvloop (stelar-core's ``uvloop`` extra):
    uvloop's transports differ in ways that matter (not ``asyncio.Transport`` subclasses; reading
    starts after ``connection_made`` even when it paused). Tests marked ``one_loop`` drive other
    processes (whose own loop is what matters) and run once, on asyncio's loop."""
    if item.get_closest_marker("one_loop") is not None:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


# ---------------------------------------------------------------- third-party distributions

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def install_distribution(tmp_path_factory):
    """``install(name)``: pip-install ``tests/fixtures/<name>`` into a private folder (not the
    test environment's site-packages, so no other test sees it); returns that folder."""

    def install(name: str) -> Path:
        source = tmp_path_factory.mktemp("src") / name
        shutil.copytree(FIXTURES / name, source)
        site = tmp_path_factory.mktemp("site")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--no-build-isolation", "--target", str(site), str(source)],
            check=True,
        )  # fmt: skip
        return site

    return install


@pytest.fixture(scope="session")
def python_with():
    """``python_with(site, args, cwd=None)``: a fresh interpreter that can import what is in
    ``site``."""

    def run(site: Path, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(site)}
        return subprocess.run(
            [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
        )

    return run


# ---------------------------------------------------------------- a real browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
async def browser():
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()
