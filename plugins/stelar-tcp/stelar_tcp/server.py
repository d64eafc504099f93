"""The server side: one ``asyncio.Protocol`` per connection around the core's ``StreamParser``.

Nothing is read before the hub admits the peer; framing errors end the stream; output is
corked and bounded by the core's ``FlowControlledProtocol`` (see ``stelar_core.transports.streams``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable

from stelar_core.plugin_api import (
    LENGTH_PREFIX_SIZE,
    Admission,
    ConnectionRefused,
    DisconnectCode,
    ErrorCode,
    FlowControlledProtocol,
    FrameType,
    HttpRequest,
    HubPort,
    Options,
    ProtocolError,
    ServerTLS,
    SessionPort,
    SocketListener,
    StreamParser,
    dump_json,
    encode_frame,
    length_prefixed,
)

PROTOCOL = "tcp"
# The ALPN name of stelar's binary protocol over TLS (``tcps://``).
ALPN = "stelar"
DEFAULT_TCP_PORT = 3001


def refusal_frames(code: str, reason: str, close_code: int) -> bytes:
    """What a refused peer receives before the close: ``error`` then ``disconnect``."""
    error = encode_frame(FrameType.ERROR, code, dump_json({"message": reason}))
    disconnect = encode_frame(FrameType.DISCONNECT, "", dump_json({"code": close_code, "reason": reason}))
    return length_prefixed(error) + length_prefixed(disconnect)


class TcpConnection(FlowControlledProtocol):
    """One peer: the hub's ``Connection`` and asyncio's protocol in one object."""

    __slots__ = ("_admitting", "_hub", "_owner", "_parser", "remote_address")
    protocol = PROTOCOL
    request: HttpRequest | None = None

    def __init__(self, owner: TcpTransport) -> None:
        config = owner.hub.config
        super().__init__(
            config.max_buffered_bytes, config.slow_consumer_timeout, owner.write_batch, owner.hub.clock
        )
        self._owner = owner
        self._hub = owner.hub
        self._parser = StreamParser(config.max_frame_size)
        self.remote_address = ""
        self._admitting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = self.set_transport(transport)
        self.remote_address = self.peer_address(stream)
        self._owner.connections.add(self)
        try:
            admitted = self._hub.admit_nowait(self.remote_address, self.protocol)
        except ConnectionRefused as refusal:
            self._refuse(stream, refusal)
            return
        if inspect.isawaitable(admitted):
            stream.pause_reading()  # nothing is read before admission
            self._admitting = asyncio.ensure_future(self._admit(stream, admitted))
        else:
            self.session = self._hub.open_session(self, admitted)

    def peer_address(self, stream: asyncio.Transport) -> str:
        """The address the hub's per-IP limits count (a subclass over another socket family
        says what identifies its peers)."""
        peer = stream.get_extra_info("peername")
        return str(peer[0]) if peer else ""

    async def _admit(self, stream: asyncio.Transport, admitted: Awaitable[Admission]) -> None:
        try:
            admission = await admitted
        except ConnectionRefused as refusal:
            self._refuse(stream, refusal)
            return
        finally:
            self._admitting = None  # a finished task and its coroutine cost ~700 bytes per connection
        if stream.is_closing():
            admission.release()
            return
        self.session = session = self._hub.open_session(self, admission)
        self._receive_frames(session)  # those that arrived during admission
        self.update_reading()

    def _refuse(self, stream: asyncio.Transport, refusal: ConnectionRefused) -> None:
        self.closing = True
        stream.write(refusal_frames(refusal.code, refusal.reason, refusal.close_code))
        stream.close()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self._parser.receive_data(data)
        if self.session is None:
            # Bytes that beat the admission: uvloop starts reading after connection_made even
            # though it paused. They wait in the parser; nothing more is read until admitted.
            self._stream().pause_reading()
            return
        self.reading = True
        try:
            self._receive_frames(self.session)
        finally:
            self.reading_done()

    def _receive_frames(self, session: SessionPort) -> None:
        try:
            while not self.closing and (frame := self._parser.next_frame()) is not None:
                session.receive(frame)
        except ProtocolError as exc:
            too_big = exc.code == ErrorCode.FRAME_TOO_LARGE
            session.fail(
                exc.code,
                exc.reason,
                DisconnectCode.MESSAGE_TOO_BIG if too_big else DisconnectCode.PROTOCOL_ERROR,
            )

    def eof_received(self) -> bool:
        return False  # the peer finished sending: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended()
        if self._admitting is not None and not self._admitting.done():
            self._admitting.cancel()
        self._owner.connections.discard(self)
        if self.session is not None:
            reason = f"connection lost: {exc}" if exc else "connection closed without a disconnect frame"
            self.session.connection_lost(DisconnectCode.ABNORMAL, reason)

    # ------------------------------------------------------------------ Connection (hub side)

    def send(self, frame: bytes) -> None:
        self.queue(self._owner.wire_frame(frame))

    def close(self, code: int, reason: str) -> None:
        self.end()


class TcpTransport(SocketListener[TcpConnection]):
    """Listens on ``host``:``port`` of its options (IPv4 or IPv6; port 0 picks a free one)."""

    name = PROTOCOL

    def __init__(self, hub: HubPort, options: Options, tls: ServerTLS | None = None) -> None:
        super().__init__(hub, "tcp", "tcps", tls, alpn=(ALPN,))
        self.options = options

    def wrap(self, frame: bytes) -> bytes:
        return len(frame).to_bytes(LENGTH_PREFIX_SIZE, "big") + frame

    @property
    def addresses(self) -> list[str]:
        return self.urls()

    async def start(self) -> None:
        port = self.options.port
        await self.listen(lambda: TcpConnection(self), DEFAULT_TCP_PORT if port is None else port)
