"""The client side: ``connect_tcp(url, receiver)`` for ``tcp://host:port`` and ``tcps://``."""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from urllib.parse import urlsplit

from stelar_core.plugin_api import (
    ClientStream,
    ConnectOptions,
    DisconnectCode,
    FrameReceiver,
    FrameType,
    ProtocolError,
    StreamParser,
    client_context,
    dump_json,
    encode_frame,
    handshake_error,
    length_prefixed,
    load_json,
)

SCHEMES = ("tcp", "tcps")


class TcpClientLink(ClientStream):
    """An open client connection: ``send(frame)``, ``close(code, reason)``; frames and the end
    of the connection go to the receiver. The close code reported is the one of the server's
    disconnect frame, or 1006 when the connection ended without one."""

    def __init__(self, receiver: FrameReceiver, options: ConnectOptions) -> None:
        super().__init__(receiver, options)
        self._parser = StreamParser(options.max_frame_size)
        self._closing = False

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.receive_data(data)
            while (frame := self._parser.next_frame()) is not None:
                if frame[0] == FrameType.DISCONNECT:
                    self._note_disconnect(frame)
                self._receiver.frame_received(frame)
        except ProtocolError as exc:
            self.abort(DisconnectCode.PROTOCOL_ERROR, exc.reason)

    def _note_disconnect(self, frame: bytes) -> None:
        try:
            body = load_json(frame[3 + int.from_bytes(frame[1:3], "big") :])
            self.ending = (int(body["code"]), str(body.get("reason", "")))
        except (ProtocolError, KeyError, TypeError, ValueError):
            self.ending = (DisconnectCode.PROTOCOL_ERROR, "malformed disconnect frame")

    def send(self, frame: bytes) -> None:
        # A transport already failing is closing: writing would only log asyncio warnings.
        if not self._closing:
            self.write(length_prefixed(frame))

    def close(self, code: int = DisconnectCode.NORMAL, reason: str = "") -> None:
        """Say goodbye with a disconnect frame, then close."""
        if self._transport is None or self._closing:
            return
        self._closing = True
        self.ending = self.ending or (code, reason)
        goodbye = encode_frame(FrameType.DISCONNECT, "", dump_json({"code": code, "reason": reason}))
        self.write(length_prefixed(goodbye))
        self._transport.close()


async def connect_tcp(url: str, receiver: FrameReceiver, options: ConnectOptions) -> TcpClientLink:
    """Open ``tcp://host:port`` or ``tcps://host:port`` (TLS, certificate verified unless
    ``options.reject_unauthorized`` is false; ``ca_file`` adds a trusted CA). ``local_address``
    binds the client's end (e.g. another loopback address)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"expected a tcp:// or tcps:// URL, got {url!r}")
    if not parts.hostname or parts.port is None:
        raise ValueError(f"URL {url!r} needs a host and a port")
    ssl = client_context(url, options) if parts.scheme == "tcps" else None
    loop = asyncio.get_running_loop()
    try:
        _, link = await asyncio.wait_for(
            loop.create_connection(
                lambda: TcpClientLink(receiver, options),
                parts.hostname,
                parts.port,
                ssl=ssl,
                server_hostname=(options.server_hostname or parts.hostname) if ssl is not None else None,
                local_addr=(options.local_address, 0) if options.local_address else None,
            ),
            options.connect_timeout,
        )
    except (ssl_module.SSLError, ConnectionResetError) as exc:
        if ssl is None:
            raise
        raise handshake_error(url, exc) from exc
    return link
