"""An asyncio transport stand-in, for driving a socket transport's protocol byte by byte."""

from __future__ import annotations

import asyncio
from typing import Any


class StandInTransport(asyncio.Transport):
    """What a connection protocol (``WsConnection``, ``TcpConnection``) asks of its asyncio
    transport, with no socket: it keeps what is written, and says whether it was closed or
    aborted and whether reading is paused. Feed the protocol with ``data_received`` in any
    pieces to test how it cuts a stream, or count what one request costs (bench/instructions.py).
    """

    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.peer = peer
        self.closed = False
        self.aborted = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Nothing is ever buffered here."""

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
