"""One WebSocket that arrived through ASGI, as the hub sees it (a ``Connection``).

The hub's ``send`` never waits: frames join an output queue that one writer task hands to the
ASGI server (``websocket.send``), which waits when the peer does not read. The queue is bounded
the way the native transports bound a socket's output: over ``max_buffered_bytes`` for
``slow_consumer_timeout`` seconds, or over twice that while the ASGI server holds a send back,
the peer is a slow consumer.
``pause_reading`` stops the receive loop from taking messages (the ASGI server then stops
reading the socket once its own small buffer is full).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from stelar_core.plugin_api import HttpRequest, HubPort, SessionPort, Timer

PROTOCOL = "asgi"
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AsgiConnection:
    def __init__(self, hub: HubPort, send: Send, request: HttpRequest) -> None:
        self._hub = hub
        self._send = send
        self.protocol = PROTOCOL
        self.request: HttpRequest | None = request
        # TLS ends at the ASGI server, which does not hand stelar the client's certificate.
        self.peer_certificate: Mapping[str, Any] | None = None
        self.remote_address = request.remote_address
        self.session: SessionPort | None = None
        self.reading = asyncio.Event()
        self.reading.set()
        self._out: deque[bytes] = deque()
        self._out_bytes = 0
        self._wake = asyncio.Event()
        self._close: tuple[int, str] | None = None
        self._slow_timer: Timer | None = None
        self._sending = False  # the writer waits for the ASGI server to take a frame
        self.closed = False

    # ------------------------------------------------------------------ Connection (hub -> peer)

    def send(self, frame: bytes) -> None:
        if self._close is not None:
            return
        self._out.append(frame)
        self._out_bytes += len(frame)
        self._wake.set()
        config = self._hub.config
        # Over twice the limit while the ASGI server holds a send back (the peer does not read):
        # dropped now. A burst the writer has not had a turn to pass on yet only starts the grace.
        if self._out_bytes > 2 * config.max_buffered_bytes and self._sending:
            # Never call back into the hub from inside one of its sends: next iteration.
            asyncio.get_running_loop().call_soon(self._too_slow)
        elif self._out_bytes > config.max_buffered_bytes and self._slow_timer is None:
            self._slow_timer = self._hub.clock.call_later(config.slow_consumer_timeout, self._too_slow)

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued (the writer sends ``websocket.close`` last)."""
        if self._close is None:
            self._close = (code, reason)
            self._wake.set()
            self.reading.set()  # the receive loop must see the disconnect that follows

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def _too_slow(self) -> None:
        if self.session is not None and self._close is None:
            self.session.slow_consumer(self._out_bytes)
            # The hub closed us: a peer that does not read gets no goodbye it would not read.
            self._out.clear()
            self._out_bytes = 0

    # ------------------------------------------------------------------ the writer

    async def write(self) -> None:
        """Hand the queue to the ASGI server, in order; the close frame last."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._out:
                frame = self._out.popleft()
                self._out_bytes -= len(frame)
                self._sending = True
                await self._send({"type": "websocket.send", "bytes": frame})
                self._sending = False
                if self._slow_timer is not None and self._out_bytes <= self._hub.config.max_buffered_bytes:
                    self._slow_timer.cancel()
                    self._slow_timer = None
            if self._close is not None:
                code, reason = self._close
                self.closed = True
                await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})
                return
