"""Where socket transports accept connections: in plaintext through ``loop.create_server``; over
TLS through an accept loop of their own.

Why not ``create_server(ssl=...)`` for TLS: asyncio's server keeps one context for its whole life
(a renewed certificate would need a restart), and a handshake that fails or stalls never reaches
the protocol (asyncio only logs it), so it could be neither counted nor hooked. Here each
accepted socket handshakes through ``loop.connect_accepted_socket`` with the context the TLS
provider gives *now*, under the server's ``connect_timeout`` on its clock (the deadline of a
stalled WebSocket upgrade). The connection's protocol sees nothing before the handshake is
complete, so a handshake never counts as a connection; a failed one is reported to the hub
(``tls_handshake_failures`` in the stats, the ``on_tls_handshake_failed`` hook).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence

from stelar_core.tls import NOT_TLS_REASONS, ServerTLS, failure_category
from stelar_core.transports.base import HubPort

BACKLOG = 1024
# TLS handshakes in progress at once (each lasts at most connect_timeout); past this many, a new
# socket is closed at once and counted, so a flood of idle sockets cannot hold unbounded state.
MAX_HANDSHAKES = 1024
# Accepting failed (out of file descriptors): wait this long before the next accept, as asyncio's
# own server does, instead of spinning.
ACCEPT_ERROR_PAUSE = 1.0


class Listener:
    """The listening sockets of one transport (``protocol``: ``ws``, ``tcp``, ``http``)."""

    def __init__(self, hub: HubPort, protocol: str, tls: ServerTLS | None, alpn: Sequence[str] = ()) -> None:
        self._hub = hub
        self._protocol = protocol
        self._alpn = tuple(alpn)
        # Whether this transport serves TLS is settled now; the context is asked for again for
        # every connection (it changes when the certificate is renewed).
        self._tls = tls if tls is not None and tls.context(protocol, self._alpn) is not None else None
        self._server: asyncio.Server | None = None
        self._sockets: list[socket.socket] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._log = hub.logger(f"stelar.{protocol}")

    @property
    def secure(self) -> bool:
        return self._tls is not None

    @property
    def handshakes(self) -> int:
        """TLS handshakes in progress."""
        return len(self._handshakes)

    def socknames(self) -> list[tuple[str, int] | tuple[str, int, int, int]]:
        if self._server is not None:
            return [sock.getsockname() for sock in self._server.sockets]
        return [sock.getsockname() for sock in self._sockets]

    async def start(self, protocol_factory: Callable[[], asyncio.BaseProtocol], port: int) -> None:
        config = self._hub.config
        loop = asyncio.get_running_loop()
        if self._tls is None:
            self._server = await loop.create_server(
                protocol_factory,
                host=config.host,
                port=port,
                backlog=BACKLOG,
                reuse_port=config.reuse_port or None,
            )
            return
        self._sockets = bind(config.host, port, reuse_port=config.reuse_port)
        for sock in self._sockets:
            loop.add_reader(sock, self._accept, sock, protocol_factory, self._tls)

    def close(self) -> None:
        """Stop accepting (handshakes in progress go on until ``abort_handshakes``)."""
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            loop.remove_reader(sock)
            sock.close()
        self._sockets = []  # no address is listed once closed, as asyncio's server does

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def abort_handshakes(self) -> None:
        pending = list(self._handshakes)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # ------------------------------------------------------------------ TLS

    def _accept(
        self, sock: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol], tls: ServerTLS
    ) -> None:
        """The listening socket is readable: take every waiting connection (up to a backlog's
        worth per wake-up, as asyncio's own server does) and start its handshake."""
        loop = asyncio.get_running_loop()
        for _ in range(BACKLOG):
            try:
                peer, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: pause rather than spin
                self._log.warning(
                    "accepting a connection failed: %s; trying again in %g s", exc, ACCEPT_ERROR_PAUSE
                )
                loop.remove_reader(sock)
                loop.call_later(ACCEPT_ERROR_PAUSE, self._resume_accepting, sock, protocol_factory, tls)
                return
            peer.setblocking(False)
            ip = str(address[0]) if address else ""
            if len(self._handshakes) >= MAX_HANDSHAKES:
                peer.close()
                self._hub.tls_handshake_failed(
                    ip, self._protocol, "overload", f"{MAX_HANDSHAKES} TLS handshakes already in progress"
                )
                continue
            task = loop.create_task(self._handshake(peer, ip, protocol_factory, tls))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def _resume_accepting(
        self, sock: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol], tls: ServerTLS
    ) -> None:
        if sock.fileno() != -1:  # not closed meanwhile
            asyncio.get_running_loop().add_reader(sock, self._accept, sock, protocol_factory, tls)

    async def _handshake(
        self,
        peer: socket.socket,
        ip: str,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        tls: ServerTLS,
    ) -> None:
        timeout = self._hub.config.connect_timeout
        context = tls.context(self._protocol, self._alpn)
        if context is None:  # the provider stopped serving this transport: nothing to talk
            peer.close()
            return
        this = asyncio.current_task()
        assert this is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            this.cancel()

        deadline = self._hub.clock.call_later(timeout, expire)
        try:
            # From here the socket belongs to the loop's transport, which closes it on failure.
            # asyncio's own handshake timeout is a backstop behind the server's deadline.
            await asyncio.get_running_loop().connect_accepted_socket(
                protocol_factory, peer, ssl=context, ssl_handshake_timeout=timeout + 1.0
            )
        except asyncio.CancelledError:
            if not expired:
                raise  # the server is stopping
            self._hub.tls_handshake_failed(
                ip, self._protocol, "timeout", f"no TLS handshake within connect_timeout ({timeout:g} s)"
            )
        except OSError as exc:  # ssl.SSLError included
            self._hub.tls_handshake_failed(ip, self._protocol, failure_category(exc), describe(exc))
        finally:
            deadline.cancel()


def describe(error: OSError) -> str:
    """A handshake failure in words an operator can act on."""
    reason = getattr(error, "reason", None)
    if reason == "HTTP_REQUEST":
        return "plaintext HTTP sent to a TLS port (the client should use wss:// or https://)"
    if reason in NOT_TLS_REASONS:
        return f"not a TLS client hello ({reason}): plaintext sent to a TLS port"
    if isinstance(error, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return (
            f"the client left during the handshake ({type(error).__name__}), as one that does not "
            "trust the certificate does"
        )
    return str(error) or type(error).__name__


def bind(host: str, port: int, *, reuse_port: bool) -> list[socket.socket]:
    """Listening sockets for every address of ``host`` (as ``create_server`` binds them)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, _, _, _, address in dict.fromkeys(infos):
            sock = socket.create_server(address[:2], family=family, backlog=BACKLOG, reuse_port=reuse_port)
            sock.setblocking(False)
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
