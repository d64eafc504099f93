"""The client side: ``connect_ws(url, receiver)`` for ``ws://`` and ``wss://`` URLs, with the
``websockets`` sans-I/O ``ClientProtocol`` driven by our own ``asyncio.Protocol``."""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Mapping

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri

from stelar_core.plugin_api import (
    ClientStream,
    ConnectionRefused,
    ConnectOptions,
    DisconnectCode,
    FrameReceiver,
    client_context,
    handshake_error,
)
from stelar_ws.wire import CLOSE_HANDSHAKE_TIMEOUT, SUBPROTOCOL


class HandshakeRejected(ConnectionRefused):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__("handshake_rejected", f"HTTP {status}: {body}", DisconnectCode.POLICY_VIOLATION)
        self.status = status
        self.body = body


class WsClientLink(ClientStream):
    """An open client connection: ``send(frame)``, ``close(code, reason)``."""

    def __init__(self, ws: ClientProtocol, receiver: FrameReceiver, options: ConnectOptions) -> None:
        super().__init__(receiver, options)
        self.ws = ws
        self._fragments: list[bytes] = []
        self.handshake: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._close_timer: asyncio.TimerHandle | None = None

    def start(self, headers: Mapping[str, str]) -> None:
        request = self.ws.connect()
        for name, value in headers.items():
            request.headers[name] = value
        self.ws.send_request(request)
        self._write_output()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                self._on_response(event)
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._write_output()

    def _on_response(self, response: Response) -> None:
        if self.handshake.done():
            return
        if response.status_code == 101 and self.ws.state is State.OPEN:
            self.handshake.set_result(response)
        else:
            body = bytes(response.body or b"").decode(errors="replace").strip()
            self.handshake.set_exception(HandshakeRejected(response.status_code, body))

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.BINARY or frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), []
                self._receiver.frame_received(data)

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self._write_output()
        return False

    def report_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self.handshake.done():
            hint = (
                "a server that requires a client certificate closes so: see the client's tls option"
                if self.ws.uri.secure
                else "if the server serves TLS on that port, use wss://"
            )
            cause = exc or "closed by the server"
            self.handshake.set_exception(
                ConnectionError(f"connection lost during the handshake: {cause} ({hint})")
            )
            return
        if self.handshake.cancelled() or self.handshake.exception() is not None:
            return  # refused at the HTTP stage: the link never opened, so there is nothing to lose
        received = self.ws.close_rcvd
        if self.ending is None and received is not None:
            self.ending = (received.code, received.reason)
        if self.ending is None:
            self.ending = (DisconnectCode.ABNORMAL, f"connection lost: {exc or 'no close frame'}")
        super().report_lost(exc)

    def send(self, frame: bytes) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_binary(frame)
            self._write_output()

    def close(self, code: int = DisconnectCode.NORMAL, reason: str = "") -> None:
        """Start the close handshake; the connection ends when the server answers."""
        if self.ws.state is State.OPEN:
            self.ws.send_close(code, reason)
            self._write_output()
            self._close_timer = asyncio.get_running_loop().call_later(CLOSE_HANDSHAKE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        self.abort(DisconnectCode.ABNORMAL, "no close frame from the server")

    def _write_output(self) -> None:
        assert self._transport is not None
        if not self.writable:
            self.ws.data_to_send()  # nothing can leave any more
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                self.write(chunk)
            elif self._transport.can_write_eof():
                self._transport.write_eof()
            else:
                self._transport.close()


async def connect_ws(url: str, receiver: FrameReceiver, options: ConnectOptions) -> WsClientLink:
    """Open ``ws://host:port/path`` or ``wss://...`` with subprotocol ``stelar.v1``.

    ``options.headers`` are added to the upgrade request (the seed's ``headers``) and
    ``options.origin`` is sent as its ``Origin``; certificates are verified unless
    ``reject_unauthorized=False``; ``ca_file`` adds a trusted CA. Raises
    :class:`HandshakeRejected` when the server answers with another status than 101.
    """
    uri = parse_uri(url)
    extensions = [ClientPerMessageDeflateFactory()] if options.compression else None
    ws = ClientProtocol(
        uri,
        origin=Origin(options.origin) if options.origin else None,
        subprotocols=[SUBPROTOCOL],
        extensions=extensions,
        max_size=options.max_frame_size,
    )
    ssl = client_context(url, options) if uri.secure else None
    loop = asyncio.get_running_loop()

    async def open_link() -> WsClientLink:
        try:
            _, link = await loop.create_connection(
                lambda: WsClientLink(ws, receiver, options),
                uri.host,
                uri.port,
                ssl=ssl,
                server_hostname=(options.server_hostname or uri.host) if ssl is not None else None,
                local_addr=(options.local_address, 0) if options.local_address else None,
            )
        except (ssl_module.SSLError, ConnectionResetError) as exc:
            if ssl is None:
                raise
            raise handshake_error(url, exc) from exc
        link.start(options.headers)
        await link.handshake
        return link

    return await asyncio.wait_for(open_link(), options.connect_timeout)
