"""What the client links of socket transports (TCP, WebSocket) share: the connection, bounded
output, and reporting the end of the connection once.

Output is bounded like the servers' (``streams.FlowControlledProtocol``): above
``max_buffered_bytes`` unsent, a timer of ``write_timeout`` starts; if the server has not read
enough by then, or the buffer passes twice the bound, the link is aborted and reported lost
(1008, "server not reading"), so a client never holds an unbounded backlog for a server that
stopped reading. ``StelarClient`` then reconnects as after any lost connection.
"""

from __future__ import annotations

import asyncio
from typing import cast

from stelar_core.clock import Timer
from stelar_core.protocol import DisconnectCode
from stelar_core.transports.base import ConnectOptions, FrameReceiver

NOT_READING = "server not reading"


class ClientStream(asyncio.Protocol):
    """The asyncio side of a client link; subclasses parse what arrives and frame what leaves."""

    def __init__(self, receiver: FrameReceiver, options: ConnectOptions) -> None:
        self._receiver = receiver
        self._max_buffered = options.max_buffered_bytes
        self._write_timeout = options.write_timeout
        self._clock = options.clock
        self._transport: asyncio.Transport | None = None
        self._write_timer: Timer | None = None
        self.ending: tuple[int, str] | None = None  # the code and reason to report, once known
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's implement the interface without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=self._max_buffered, low=self._max_buffered // 2)

    @property
    def writable(self) -> bool:
        """Whether bytes can still leave (not closing, not aborted)."""
        return self._transport is not None and not self._transport.is_closing()

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > 2 * self._max_buffered:
            self.abort(DisconnectCode.POLICY_VIOLATION, NOT_READING)

    def pause_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        if self._write_timer is None:
            self._write_timer = self._clock.call_later(
                self._write_timeout, self.abort, DisconnectCode.POLICY_VIOLATION, NOT_READING
            )

    def resume_writing(self) -> None:
        self._cancel_write_timer()

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def abort(self, code: int, reason: str) -> None:
        """End now, without a goodbye; ``code`` and ``reason`` are what the receiver is told."""
        self.ending = self.ending or (code, reason)
        if self._transport is not None and not self.lost:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._cancel_write_timer()
        self.report_lost(exc)

    def report_lost(self, exc: Exception | None) -> None:
        """Tell the receiver how the connection ended (a subclass may know more)."""
        code, reason = self.ending or (
            DisconnectCode.ABNORMAL,
            f"connection lost: {exc}" if exc else "connection closed",
        )
        self._receiver.connection_lost(code, reason)
