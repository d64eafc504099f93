"""What socket-based transports (TCP, WebSocket) share: output flow control, stopping, URLs.

A transport's per-connection protocol subclasses :class:`FlowControlledProtocol` and gets:

* **corking**: bytes queued during one event-loop iteration leave in one write, so a burst of
  broadcasts costs one system call per connection, not one per message; the connections with
  bytes waiting are flushed together by one callback per iteration (:class:`WriteBatch`), not
  one callback each. What a connection is sent while its own input is handled (the answers to
  what it sent, with anything else queued for it) leaves at the end of that ``data_received``
  instead (:meth:`FlowControlledProtocol.reading_done`): in the same iteration, with no callback;
* **bounded output**: above ``max_buffered_bytes`` of unsent output the peer's input is paused;
  if it stays above for ``slow_consumer_timeout``, or exceeds twice the bound after a write, the
  peer is reported to the hub as a slow consumer and aborted. Queuing never blocks, so a
  broadcast never waits for its slowest member;
* **reading paused for two reasons**, the hub's (its inbox is full) and the output bound's, and
  resumed only when neither holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from stelar_core.transports.base import HubPort, SessionPort
from stelar_core.transports.listening import Listener

if TYPE_CHECKING:
    from stelar_core.clock import Clock, Timer
    from stelar_core.tls import ServerTLS


class WriteBatch:
    """The connections that queued bytes during this loop iteration, flushed together at its end:
    a broadcast to 1,000 members schedules one callback, not 1,000."""

    def __init__(self) -> None:
        self._waiting: list[FlowControlledProtocol] = []

    def add(self, connection: FlowControlledProtocol) -> None:
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._flush)
        self._waiting.append(connection)

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for connection in waiting:
            connection.flush()


class FlowControlledProtocol(asyncio.Protocol):
    # Slots, here and in the transports' connection classes: an instance dict of a connection's
    # thirty-odd fields is past the size CPython shares keys for, and cost ~1.5 KB per idle
    # connection (issue 18). A subclass that adds fields declares them in its own __slots__.
    __slots__ = (
        "_batch",
        "_clock",
        "_closed",
        "_ended",
        "_hub_paused",
        "_loop",
        "_max_buffered",
        "_queued",
        "_slow_consumer_timeout",
        "_slow_timer",
        "_transport",
        "_write_paused",
        "closing",
        "overflowed",
        "peer_certificate",
        "reading",
        "session",
    )
    session: SessionPort | None
    # The client certificate a TLS handshake verified (``getpeercert()``'s form), else None.
    peer_certificate: Mapping[str, Any] | None

    def __init__(
        self, max_buffered_bytes: int, slow_consumer_timeout: float, batch: WriteBatch, clock: Clock
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._clock = clock  # the server's: a test with a fake clock moves the slow-consumer grace
        self._batch = batch
        self._max_buffered = max_buffered_bytes
        self._slow_consumer_timeout = slow_consumer_timeout
        self._transport: asyncio.Transport | None = None
        self._queued: list[bytes] = []
        self.reading = False  # inside data_received: its output leaves at its end
        self._hub_paused = False
        self._write_paused = False
        self._slow_timer: Timer | None = None
        self.overflowed = False
        self.closing = False
        self.session = None
        self.peer_certificate = None
        self._closed: asyncio.Future[None] | None = None  # made on demand: most never need it
        self._ended = False

    def set_transport(self, transport: asyncio.BaseTransport) -> asyncio.Transport:
        # A stream transport; uvloop's implement the interface without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        self.peer_certificate = transport.get_extra_info("peercert") or None
        transport.set_write_buffer_limits(high=self._max_buffered, low=self._max_buffered // 2)
        return transport

    def _stream(self) -> asyncio.Transport:
        assert self._transport is not None, "used before connection_made"
        return self._transport

    # ------------------------------------------------------------------ writing

    def queue(self, data: bytes) -> None:
        """Queue bytes for the end of this iteration's write."""
        if self.closing or self.overflowed:
            return
        queued = self._queued
        queued.append(data)
        if len(queued) == 1 and not self.reading:  # the first bytes since the last flush
            self._batch.add(self)

    def reading_done(self) -> None:
        """Call at the end of ``data_received`` (which set ``reading``): write what it queued."""
        self.reading = False
        if self._queued:
            self.flush()

    def flush(self) -> None:
        transport = self._transport
        queued = self._queued
        if queued and transport is not None and not transport.is_closing():
            transport.write(queued[0] if len(queued) == 1 else b"".join(queued))
            if transport.get_write_buffer_size() > 2 * self._max_buffered and not self.overflowed:
                # Never call back into the hub from inside one of its sends: next iteration.
                self.overflowed = True
                self._loop.call_soon(self._overflow)
        self._queued.clear()

    def pause_writing(self) -> None:
        self._write_paused = True
        self.update_reading()
        if self._slow_timer is None:
            self._slow_timer = self._clock.call_later(self._slow_consumer_timeout, self._overflow)

    def resume_writing(self) -> None:
        self._write_paused = False
        self._cancel_slow_timer()
        self.update_reading()
        if self.session is not None:
            self.session.resume_sending()

    @property
    def writable(self) -> bool:
        """Whether more output is welcome: not above ``max_buffered_bytes``, not closing (rooms
        with a lossy send queue hold their messages while it is false)."""
        return not self._write_paused and not self.closing

    def _overflow(self) -> None:
        self._cancel_slow_timer()
        self.overflowed = True
        transport = self._transport
        assert transport is not None
        if self.session is not None:
            self.session.slow_consumer(transport.get_write_buffer_size())
        if not self.closing:
            self.closing = True
            transport.abort()

    def _cancel_slow_timer(self) -> None:
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None

    # ------------------------------------------------------------------ reading

    def pause_reading(self) -> None:
        """The hub's inbox for this peer is full."""
        self._hub_paused = True
        self.update_reading()

    def resume_reading(self) -> None:
        self._hub_paused = False
        self.update_reading()

    def update_reading(self) -> None:
        transport = self._transport
        if transport is None or self.closing or self.session is None:
            return
        if self._hub_paused or self._write_paused:
            transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    # ------------------------------------------------------------------ ending

    def end(self) -> None:
        """Close after flushing; abort instead when the peer never read (its buffer is full)."""
        transport = self._transport
        if self.closing or transport is None:
            return
        self.closing = True
        if self.overflowed:
            transport.abort()
            return
        self.flush()
        transport.close()

    def ended(self) -> None:
        """Call from ``connection_lost``: stop timers, resolve ``closed``."""
        self.closing = True
        self._ended = True
        self._cancel_slow_timer()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    @property
    def closed(self) -> asyncio.Future[None]:
        """Resolved once the connection is gone."""
        if self._closed is None:
            self._closed = self._loop.create_future()
            if self._ended:
                self._closed.set_result(None)
        return self._closed


async def close_connections(connections: Iterable[FlowControlledProtocol], timeout: float) -> None:
    """For a transport's ``stop``: end the connections the hub does not know (still in admission
    or handshake), wait up to ``timeout`` for every connection to be gone, abort the rest."""
    remaining = list(connections)
    for connection in remaining:
        if connection.session is None:
            connection.end()
    pending = [connection.closed for connection in remaining if not connection.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    for connection in remaining:
        if not connection.closed.done() and connection._transport is not None:
            connection._transport.abort()


C = TypeVar("C", bound=FlowControlledProtocol)


class SocketListener(Generic[C]):
    """The listening side shared by socket transports: TLS (from the server's TLS provider,
    when it serves this transport), the listener, its URLs, the two steps of a shutdown, and a
    broadcast's wire bytes made once. ``alpn`` names the protocols the transport speaks."""

    def __init__(
        self, hub: HubPort, scheme: str, secure_scheme: str, tls: ServerTLS | None, alpn: tuple[str, ...] = ()
    ) -> None:
        self.hub = hub
        self.connections: set[C] = set()
        self._listener = Listener(hub, scheme, tls, alpn)
        self._listening = False
        self._last_frame: bytes | None = None
        self._last_wire = b""
        self.write_batch = WriteBatch()
        self._scheme = secure_scheme if self._listener.secure else scheme

    def wrap(self, frame: bytes) -> bytes:
        """The bytes that carry one encoded frame on this transport's wire."""
        raise NotImplementedError

    def wire_frame(self, frame: bytes) -> bytes:
        """``wrap(frame)``, made once per broadcast: the hub hands every recipient the same
        ``bytes`` object, so remembering the last one wraps a broadcast once, not per member."""
        if frame is self._last_frame:
            return self._last_wire
        wire = self.wrap(frame)
        self._last_frame, self._last_wire = frame, wire
        return wire

    def urls(self, path: str = "") -> list[str]:
        return [socket_url(self._scheme, name, path) for name in self._listener.socknames()]

    async def listen(self, protocol_factory: Callable[[], C], port: int) -> None:
        await self._listener.start(protocol_factory, port)
        self._listening = True

    async def stop_accepting(self) -> None:
        self._listener.close()

    def stats(self) -> Mapping[str, int]:
        if self._listener.secure:
            return {"connections": len(self.connections), "tls_handshakes": self._listener.handshakes}
        return {"connections": len(self.connections)}

    async def stop(self) -> None:
        """Stop listening, end the connections the hub did not know, wait up to
        ``shutdown_timeout`` for the rest to go."""
        if not self._listening:
            return
        self._listening = False
        self._listener.close()
        await self._listener.wait_closed()
        await self._listener.abort_handshakes()
        await close_connections(self.connections, self.hub.config.shutdown_timeout)
        self._last_frame, self._last_wire = None, b""


def socket_url(scheme: str, sockname: tuple[str, int] | tuple[str, int, int, int], path: str = "") -> str:
    """``scheme://host:port/path`` for a bound socket, with IPv6 hosts in brackets."""
    host, port = sockname[0], sockname[1]
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{scheme}://{netloc}{path}"
