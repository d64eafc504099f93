"""The hub/transport seam: what a transport gives the hub, and what the hub gives a transport.

A transport turns bytes on a socket into frames for the hub and frames from the hub into bytes
on a socket. It never sees events or rooms. Its life with the hub, per connection:

1. ``admission = await hub.admit(remote_address, protocol)`` as soon as the peer is accepted
   (raises :class:`~stelar_core.errors.ConnectionRefused` with a code, reason and close code);
   ``hub.admit_nowait`` is the same without a coroutine when the answer is at hand;
2. ``session = hub.open_session(connection, admission)`` once it can carry frames;
3. ``session.receive(frame)`` for each whole frame (no envelope) the peer sends;
4. ``session.connection_lost(code, reason)`` when the peer is gone, whoever closed;
   ``session.fail(...)`` when the stream itself breaks, ``session.slow_consumer(...)`` when the
   peer stops reading.

The hub calls ``connection.send(frame)`` with encoded frames (the same bytes object for every
recipient of a broadcast, so a transport can wrap it once) and ``connection.close(code, reason)``.
"""

from __future__ import annotations

import http.cookies
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from stelar_core.clock import REAL_CLOCK, Clock

if TYPE_CHECKING:
    from stelar_core.config import ServerConfig


@attrs.frozen(slots=True)
class HttpRequest:
    """The HTTP request that opened a connection (WebSocket) or reached an HTTP route.

    Header names are lower-case. ``scope`` is the ASGI scope when the request came through an
    ASGI application (stelar-asgi): what the application's own middleware put there (a user,
    a session) is visible to stelar's middleware as ``ctx.req.scope``."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    remote_address: str = ""
    scope: Mapping[str, Any] | None = None
    # The request's body (a plain HTTP request's; an upgrade has none), at most the transport's
    # cap (``max_frame_size``): a longer one is refused with 413 before any route runs.
    body: bytes = b""

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies by name (from its ``Cookie`` header)."""
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except http.cookies.CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}


@attrs.frozen(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)


HttpHandler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]


@attrs.frozen(slots=True)
class HttpRoute:
    path: str
    handler: HttpHandler
    methods: tuple[str, ...] = ("GET",)


@runtime_checkable
class Connection(Protocol):
    """One peer, as the transport presents it to the hub."""

    protocol: str
    remote_address: str
    request: HttpRequest | None
    # The client certificate its TLS handshake verified, as ``SSLSocket.getpeercert()`` gives it
    # (subject, subjectAltName, serialNumber...); None without one.
    peer_certificate: Mapping[str, Any] | None

    def send(self, frame: bytes) -> None:
        """Queue one encoded frame; never blocks. Bounding the queue is the transport's job."""

    def close(self, code: int, reason: str) -> None:
        """Close after flushing what was queued; ``connection_lost`` follows."""

    def pause_reading(self) -> None:
        """Stop delivering frames (the hub's inbox for this peer is full)."""

    def resume_reading(self) -> None: ...


class Admission(Protocol):
    """A reserved place for one connection; released when its session closes."""

    ip: str

    def release(self) -> None:
        """Give the place back if the connection never became a session."""


class SessionPort(Protocol):
    def receive(self, frame: bytes) -> None: ...

    def connection_lost(self, code: int, reason: str) -> None: ...

    def fail(self, code: str, reason: str, close_code: int) -> None:
        """The byte stream broke the protocol below frames (a bad length prefix): the hub counts
        it, tells the hooks, sends ``error`` and ``disconnect``, and closes the connection."""

    def slow_consumer(self, buffered_bytes: int) -> None:
        """The peer does not read: its output stayed over ``max_buffered_bytes``. The hub counts
        it, tells the hooks and closes the connection (the transport should then abort)."""

    def resume_sending(self) -> None:
        """The peer's output went back under its bound: messages that rooms with a lossy send
        queue held for it go now. (A transport whose connections have a ``writable`` property
        calls it when that turns true again.)"""


class HubPort(Protocol):
    """What the hub offers a transport."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def http_routes(self) -> Mapping[str, HttpRoute]: ...

    @property
    def clock(self) -> Clock:
        """The server's clock, for a transport's own deadlines (a handshake's, say), so that
        tests with a fake clock move them too."""

    async def admit(self, remote_address: str, protocol: str) -> Admission: ...

    def admit_nowait(self, remote_address: str, protocol: str) -> Admission | Awaitable[Admission]:
        """``admit`` for a transport's per-connection path: the admission itself when the limits
        are kept in this process (the usual case: no coroutine, no task, reading need not pause),
        an awaitable of it otherwise. Raises ``ConnectionRefused`` as ``admit`` does."""

    def open_session(self, connection: Connection, admission: Admission) -> SessionPort: ...

    def count(self, counter: str, amount: int = 1) -> None:
        """Add to a named counter of ``get_stats()`` (e.g. ``slow_consumers``)."""

    def tls_handshake_failed(self, remote_address: str, protocol: str, category: str, reason: str) -> None:
        """A TLS handshake did not complete (no connection was made): counted in
        ``get_stats().tls_handshake_failures[category]`` and told to the
        ``on_tls_handshake_failed`` hook. ``category``: ``client_certificate``, ``timeout``,
        ``overload`` or ``error``; ``reason`` says what happened."""

    def logger(self, name: str) -> logging.Logger:
        """The server's logger ``name`` (``stelar.<transport>``): it follows the server's
        ``logger`` option, which concerns that server only."""


@runtime_checkable
class Transport(Protocol):
    """The server side of a transport, built by its factory as ``factory(context)`` (a
    ``TransportContext``: the hub, the transport plugin's options)."""

    name: str

    async def start(self) -> None:
        """Start listening (or accepting); return once ready."""

    async def stop_accepting(self) -> None:
        """Close the listening sockets (the first step of a shutdown); open connections stay.
        A transport that serves only HTTP routes (health) may keep listening until ``stop``."""

    async def stop(self) -> None:
        """Release every resource, waiting up to ``shutdown_timeout`` for connections the hub
        has closed to go, then aborting the rest."""

    @property
    def addresses(self) -> list[str]:
        """Where clients reach it, as URLs (``ws://127.0.0.1:3000/``, ``tcp://[::1]:3001``)."""

    def stats(self) -> Mapping[str, int]:
        """This transport's own figures for ``get_stats().transports[name]`` (e.g. open sockets,
        handshakes that timed out); ``{}`` when it has none."""


class FrameReceiver(Protocol):
    """The client side's counterpart of :class:`SessionPort`."""

    def frame_received(self, frame: bytes) -> None: ...

    def connection_lost(self, code: int, reason: str) -> None: ...


class ClientLink(Protocol):
    """An open client connection: frames out, close, and the client's own backpressure."""

    def send(self, frame: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def pause_reading(self) -> None:
        """Take no more frames from the server until ``resume_reading`` (a client that cannot
        keep up; the conformance suite plays a slow reader with it). The server then sees a
        peer that does not read."""

    def resume_reading(self) -> None: ...


DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_FRAME_SIZE = 10 * 1024 * 1024 + 1024
DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024
DEFAULT_WRITE_TIMEOUT = 5.0


@attrs.frozen(slots=True, kw_only=True)
class ConnectOptions:
    """How a client opens its link; each connector uses what applies to it and ignores the rest.

    ``headers`` and ``origin`` go with an HTTP upgrade (WebSocket); ``reject_unauthorized``,
    ``ca_file`` and ``tls`` (a client certificate: ``cert``, ``key``, ``password``; ``min_version``)
    are handed to the TLS provider for ``wss://`` / ``tcps://`` (``stelar_core.tls``), unless
    ``ssl_context`` is a context made already; ``local_address`` is the address to connect from (the memory
    transport presents it as the peer's address, so tests can act as many IPs). Output above
    ``max_buffered_bytes`` for ``write_timeout`` seconds (or above twice that) ends the link."""

    headers: Mapping[str, str] = attrs.field(factory=dict)
    origin: str | None = None
    reject_unauthorized: bool = True
    ca_file: str | None = None
    tls: Mapping[str, Any] = attrs.field(factory=dict)
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    compression: bool = False
    local_address: str | None = None
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    # What the link's own deadlines (the write timeout) read: the client's clock.
    clock: Clock = REAL_CLOCK


class Connector(Protocol):
    """The client side of a transport: opens a link to a server URL."""

    async def __call__(self, url: str, receiver: FrameReceiver, options: ConnectOptions) -> ClientLink: ...
