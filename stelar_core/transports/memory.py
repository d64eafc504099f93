"""The in-memory transport (provider ``memory``): no sockets, same seam as the network ones.

It is the test vehicle of the hub and the smallest complete example of a transport: a server
side (``MemoryTransport``) and a client side (``connect_memory``, its connector). Frames cross
through the event loop (``call_soon``), so ordering and re-entrancy behave as over a socket.
Clients reach a server at the URL in ``transport.addresses`` (``memory://<n>``).
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stelar_core.plugins.markers import hookimpl
from stelar_core.protocol import DisconnectCode
from stelar_core.transports.base import (
    Admission,
    ClientLink,
    ConnectOptions,
    FrameReceiver,
    HttpRequest,
    HubPort,
    SessionPort,
)

if TYPE_CHECKING:
    from stelar_core.clock import Timer
    from stelar_core.providers import Register, TransportContext, TransportProvider

PROTOCOL = "memory"
REMOTE_ADDRESS = "memory"
_listeners: weakref.WeakValueDictionary[str, MemoryTransport] = weakref.WeakValueDictionary()
_numbers = itertools.count(1)


class MemoryConnection:
    """The server's view of one in-memory peer."""

    protocol = PROTOCOL
    request: HttpRequest | None = None
    peer_certificate: Mapping[str, Any] | None = None

    def __init__(self, transport: MemoryTransport, receiver: FrameReceiver, remote_address: str) -> None:
        self._transport = transport
        self._receiver = receiver
        self.remote_address = remote_address
        self.session: SessionPort | None = None
        self.closed = False
        self._paused = False
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        # What the hub sent while the client did not read, bounded like a socket's output.
        self._client_paused = False
        self._unread: deque[bytes] = deque()
        self._unread_bytes = 0
        self._slow_timer: Timer | None = None
        self._loop = asyncio.get_running_loop()

    # Connection (hub -> peer)
    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        if not self._client_paused:
            self._loop.call_soon(self._receiver.frame_received, frame)
            return
        self._unread.append(frame)
        self._unread_bytes += len(frame)
        config = self._transport.hub.config
        if self._unread_bytes > 2 * config.max_buffered_bytes:
            # Never call back into the hub from inside one of its sends: next iteration.
            self._loop.call_soon(self._too_slow)
        elif self._unread_bytes > config.max_buffered_bytes and self._slow_timer is None:
            self._slow_timer = self._transport.hub.clock.call_later(
                config.slow_consumer_timeout, self._too_slow
            )

    def _too_slow(self) -> None:
        if not self.closed and self.session is not None:
            self.session.slow_consumer(self._unread_bytes)

    def client_paused(self, paused: bool) -> None:
        """The client stopped (or resumed) taking frames."""
        self._client_paused = paused
        if paused:
            return
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        unread, self._unread, self._unread_bytes = self._unread, deque(), 0
        for frame in unread:
            self._loop.call_soon(self._receiver.frame_received, frame)

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self._lose(code, reason)

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        while self._held and not self._paused and self.session is not None:
            frame = self._held.popleft()
            self._held_bytes -= len(frame)
            self.session.receive(frame)

    # peer -> hub
    def deliver(self, frame: bytes) -> None:
        if self.closed or self.session is None:
            return
        if self._paused:
            # A socket's buffers would fill and stop the sender; here the sender cannot be
            # stopped, so what it sends while we do not read is bounded, and past it, closed.
            self._held_bytes += len(frame)
            if self._held_bytes > self._transport.hub.config.max_buffered_bytes:
                self._transport.hub.count("inbound_overflow")
                self._lose(DisconnectCode.POLICY_VIOLATION, "sent too much while the server was not reading")
                return
            self._held.append(frame)
        else:
            self.session.receive(frame)

    def _lose(self, code: int, reason: str) -> None:
        self.closed = True
        self._held.clear()
        self._held_bytes = 0
        self._unread.clear()
        self._unread_bytes = 0
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        self._transport.connections.discard(self)
        if self.session is not None:
            self.session.connection_lost(code, reason)
        self._loop.call_soon(self._receiver.connection_lost, code, reason)


class MemoryClientLink:
    """The client's end: frames it sends reach the session on the next loop iteration."""

    def __init__(self, connection: MemoryConnection) -> None:
        self._connection = connection
        self._loop = asyncio.get_running_loop()

    def send(self, frame: bytes) -> None:
        if not self._connection.closed:
            self._loop.call_soon(self._connection.deliver, frame)

    def close(self, code: int = DisconnectCode.NORMAL, reason: str = "") -> None:
        if not self._connection.closed:
            self._connection._lose(code, reason)

    def pause_reading(self) -> None:
        self._connection.client_paused(True)

    def resume_reading(self) -> None:
        self._connection.client_paused(False)


class MemoryTransport:
    name = PROTOCOL

    def __init__(self, hub: HubPort) -> None:
        self.hub = hub
        self.connections: set[MemoryConnection] = set()
        self._address: str | None = None

    @property
    def addresses(self) -> list[str]:
        return [] if self._address is None else [self._address]

    def stats(self) -> Mapping[str, int]:
        return {"connections": len(self.connections)}

    async def start(self) -> None:
        self._address = f"memory://{next(_numbers)}"
        _listeners[self._address] = self

    async def stop_accepting(self) -> None:
        if self._address is not None:
            _listeners.pop(self._address, None)

    async def stop(self) -> None:
        await self.stop_accepting()
        self._address = None
        for connection in tuple(self.connections):
            connection.close(DisconnectCode.GOING_AWAY, "server stopped")

    async def accept(self, receiver: FrameReceiver, remote_address: str) -> MemoryConnection:
        admission: Admission = await self.hub.admit(remote_address, PROTOCOL)
        connection = MemoryConnection(self, receiver, remote_address)
        self.connections.add(connection)
        connection.session = self.hub.open_session(connection, admission)
        return connection


async def connect_memory(url: str, receiver: FrameReceiver, options: ConnectOptions) -> ClientLink:
    """Connector of the memory transport. ``options.local_address`` is the address the server
    sees (default ``"memory"``), so tests can act as distinct IPs.

    Raises :class:`ConnectionRefusedError` when nothing listens at ``url``, and
    :class:`~stelar_core.errors.ConnectionRefused` when the server's admission refuses.
    """
    transport = _listeners.get(url)
    if transport is None:
        raise ConnectionRefusedError(f"no memory transport listens at {url!r}")
    return MemoryClientLink(await transport.accept(receiver, options.local_address or REMOTE_ADDRESS))


def _memory_transport(context: TransportContext) -> MemoryTransport:
    return MemoryTransport(context.hub)


@hookimpl(trylast=True)
def stelar_register_transports(register: Register[TransportProvider]) -> None:
    from stelar_core.providers import TransportProvider  # the providers module imports this one

    register(PROTOCOL, TransportProvider(_memory_transport, connect_memory, ("memory",)))
