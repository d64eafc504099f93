"""The server side: an ``asyncio.Protocol`` per connection around the core's ``StreamParser``.

Per connection:

* nothing is read before the hub admits the peer (limits are checked at accept time);
* frames written in one event-loop iteration leave in one write (corking), so a burst of
  broadcasts costs one system call per connection, not one per message;
* output is bounded: above ``max_buffered_bytes`` the peer's input is paused, and if its output
  stays above for ``slow_consumer_timeout`` (or exceeds twice the bound after a write) the hub
  drops it as a slow consumer. A broadcast never waits: ``send`` only appends; what one
  iteration appends is written, and counted against the bound, at the end of that iteration.
"""

from __future__ import annotations

import asyncio
import logging

from stelar_core.errors import ConnectionRefused, ProtocolError
from stelar_core.protocol import (
    LENGTH_PREFIX_SIZE,
    DisconnectCode,
    ErrorCode,
    FrameType,
    StreamParser,
    dump_json,
    encode_frame,
    length_prefixed,
)
from stelar_core.transports.base import HttpRequest, HubPort, SessionPort
from stelar_tcp.tls import server_context

log = logging.getLogger("stelar.tcp")

PROTOCOL = "tcp"
DEFAULT_TCP_PORT = 3001
_CLOSE_WAIT = 5.0


def refusal_frames(code: str, reason: str, close_code: int) -> bytes:
    """What a refused peer receives before the close: ``error`` then ``disconnect``."""
    error = encode_frame(FrameType.ERROR, code, dump_json({"message": reason}))
    disconnect = encode_frame(FrameType.DISCONNECT, "", dump_json({"code": close_code, "reason": reason}))
    return length_prefixed(error) + length_prefixed(disconnect)


class TcpConnection(asyncio.Protocol):
    """One peer: the hub's ``Connection`` and asyncio's protocol in one object."""

    protocol = PROTOCOL
    request: HttpRequest | None = None

    def __init__(self, owner: TcpTransport) -> None:
        self._owner = owner
        self._hub = owner.hub
        self._loop = asyncio.get_running_loop()
        config = self._hub.config
        self._max_buffered = config.max_buffered_bytes
        self._parser = StreamParser(config.max_frame_size)
        self._transport: asyncio.Transport | None = None
        self.session: SessionPort | None = None
        self.remote_address = ""
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self._hub_paused = False
        self._write_paused = False
        self._slow_timer: asyncio.TimerHandle | None = None
        self._overflowed = False
        self._closing = False
        self._admitting: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.remote_address = str(peer[0]) if peer else ""
        transport.set_write_buffer_limits(high=self._max_buffered, low=self._max_buffered // 2)
        transport.pause_reading()  # nothing is read before admission
        self._owner.connections.add(self)
        self._admitting = asyncio.ensure_future(self._admit())

    async def _admit(self) -> None:
        assert self._transport is not None
        try:
            admission = await self._hub.admit(self.remote_address, PROTOCOL)
        except ConnectionRefused as refusal:
            self._closing = True
            self._transport.write(refusal_frames(refusal.code, refusal.reason, refusal.close_code))
            self._transport.close()
            return
        if self._transport.is_closing():
            admission.release()
            return
        self.session = self._hub.open_session(self, admission)
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or self._closing:
            return
        try:
            self._parser.receive_data(data)
            while (frame := self._parser.next_frame()) is not None:
                session.receive(frame)
                if self._closing:
                    return
        except ProtocolError as exc:
            close_code = (
                DisconnectCode.MESSAGE_TOO_BIG
                if exc.code == ErrorCode.FRAME_TOO_LARGE
                else DisconnectCode.PROTOCOL_ERROR
            )
            session.fail(exc.code, exc.reason, close_code)

    def eof_received(self) -> bool:
        return False  # the peer finished sending: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._slow_timer is not None:
            self._slow_timer.cancel()
        if self._admitting is not None and not self._admitting.done():
            self._admitting.cancel()
        self._owner.connections.discard(self)
        if self.session is not None:
            reason = f"connection lost: {exc}" if exc else "connection closed without a disconnect frame"
            self.session.connection_lost(DisconnectCode.ABNORMAL, reason)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()
        if self._slow_timer is None:
            timeout = self._hub.config.slow_consumer_timeout
            self._slow_timer = self._loop.call_later(timeout, self._overflow)

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        self._update_reading()

    # ------------------------------------------------------------------ Connection (hub side)

    def send(self, frame: bytes) -> None:
        if self._closing or self._overflowed:
            return
        self._pending.append(len(frame).to_bytes(LENGTH_PREFIX_SIZE, "big"))
        self._pending.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write what this iteration produced in one go; past twice the bound, give up on the
        peer at once (it is not reading, and waiting longer would only grow the buffer)."""
        self._flush_scheduled = False
        transport = self._transport
        if self._pending and transport is not None and not transport.is_closing():
            transport.write(b"".join(self._pending))
            if transport.get_write_buffer_size() > 2 * self._max_buffered and not self._overflowed:
                self._loop.call_soon(self._overflow)
                self._overflowed = True
        self._pending.clear()

    def close(self, code: int, reason: str) -> None:
        if self._closing or self._transport is None:
            return
        self._closing = True
        if self._overflowed:
            self._transport.abort()  # its buffer is full of what it will never read
            return
        self._flush()
        self._transport.close()

    def pause_reading(self) -> None:
        self._hub_paused = True
        self._update_reading()

    def resume_reading(self) -> None:
        self._hub_paused = False
        self._update_reading()

    # ------------------------------------------------------------------ internals

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._closing or self.session is None:
            return
        if self._hub_paused or self._write_paused:
            transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    def _overflow(self) -> None:
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        self._overflowed = True
        assert self._transport is not None
        buffered = self._transport.get_write_buffer_size()
        if self.session is not None:
            self.session.slow_consumer(buffered)
        if not self._closing:
            self._closing = True
            self._transport.abort()


class TcpTransport:
    """Listens on ``host``:``tcp_port`` (IPv4 or IPv6; port 0 picks a free one)."""

    name = PROTOCOL

    def __init__(self, hub: HubPort) -> None:
        self.hub = hub
        self.connections: set[TcpConnection] = set()
        self._server: asyncio.Server | None = None
        config = hub.config
        self._ssl = server_context(config.tls) if config.tls is not None else None

    @property
    def addresses(self) -> list[str]:
        if self._server is None:
            return []
        scheme = "tcps" if self._ssl is not None else "tcp"
        urls = []
        for sock in self._server.sockets:
            host, port = sock.getsockname()[:2]
            urls.append(f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}")
        return urls

    async def start(self) -> None:
        config = self.hub.config
        port = DEFAULT_TCP_PORT if config.tcp_port is None else config.tcp_port
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: TcpConnection(self),
            host=config.host,
            port=port,
            ssl=self._ssl,
            ssl_handshake_timeout=config.connect_timeout if self._ssl is not None else None,
            backlog=1024,
        )

    async def stop(self) -> None:
        """Stop listening, drop what the hub did not close (peers still in admission), and wait
        until every connection has really gone."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        waiting = [connection.closed for connection in self.connections]
        for connection in tuple(self.connections):
            if connection.session is None:
                connection.close(DisconnectCode.GOING_AWAY, "server stopped")
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=_CLOSE_WAIT)
            for connection in tuple(self.connections):
                if connection.closed in late and connection._transport is not None:
                    connection._transport.abort()
