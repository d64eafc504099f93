"""The server side: the ``websockets`` sans-I/O ``ServerProtocol`` driven by our own
``asyncio.Protocol``, one per connection.

The library's state machine stays authoritative for the handshake, control frames, close,
validation and compression. What is done beside it is the data path of uncompressed
connections: server-to-client frames are unmasked, so the WebSocket frame of a broadcast is
encoded once and the same bytes go to every recipient (see ``WsTransport.wire_frame``); and the
common inbound frame (one small binary message) is unmasked by ``stelar_ws.frames``, every
other frame still going to the library.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import struct
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence

from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from stelar_core.plugin_api import (
    Admission,
    ConnectionRefused,
    DisconnectCode,
    FlowControlledProtocol,
    HttpRequest,
    HttpResponse,
    HubPort,
    Options,
    PlainHttpExchange,
    ServerTLS,
    SocketListener,
    Timer,
    serve_route,
)
from stelar_ws.frames import InboundFrames
from stelar_ws.http import (
    client_address,
    origin_refusal,
    refusal_response,
    request_fields,
    text_response,
    to_request,
    to_response,
)
from stelar_ws.upgrade import Upgrade, read_upgrade, switching_protocols
from stelar_ws.wire import CLOSE_HANDSHAKE_TIMEOUT, SUBPROTOCOL, WEBSOCKET_VERSION

PROTOCOL = "ws"
# What an upgrade, and a request websockets' parser reads, starts with.
GET = b"GET "
DEFAULT_PORT = 3000
# The logger given to websockets' protocol objects (looked up once: the library would look one up
# for every connection, under logging's lock). Its per-connection INFO lines ("connection open",
# "connection closed") repeat stelar's own ("client ... connected", "disconnected"), and an
# upgrade read by stelar_ws.upgrade makes no "open" line at all: they are left out unless this
# logger is set lower (docs/operations.md); the library's warnings and errors show.
LIBRARY_LOGGER = logging.getLogger("stelar.ws.library")
LIBRARY_LOGGER.setLevel(logging.WARNING)

TextHandler = Callable[["WsConnection", str], None]


def binary_frame_header(length: int) -> bytes:
    """RFC 6455 header of an unmasked, final, binary frame of ``length`` bytes."""
    if length < 126:
        return bytes((0x82, length))
    if length < 1 << 16:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class WsConnection(FlowControlledProtocol):
    """One peer: HTTP request, upgrade, then stelar frames in binary messages."""

    __slots__ = (
        "_after_request",
        "_close_timer",
        "_compressed",
        "_deadline",
        "_fragmented_text",
        "_fragments",
        "_hub",
        "_inbound",
        "_opening",
        "_owner",
        "_peer",
        "_plain",
        "_request_tail",
        "_tasks",
        "remote_address",
        "request",
        "ws",
    )
    protocol = PROTOCOL

    def __init__(self, owner: WsTransport) -> None:
        config = owner.hub.config
        super().__init__(
            config.max_buffered_bytes, config.slow_consumer_timeout, owner.write_batch, owner.hub.clock
        )
        self._owner = owner
        self._hub = owner.hub
        # websockets' protocol object, made when first needed (``_protocol``): at once for a
        # request the library reads, at the 101 for an upgrade read here (``stelar_ws.upgrade``).
        self.ws: ServerProtocol | None = None
        self.request: HttpRequest | None = None
        self.remote_address = ""
        self._peer = ""
        self._fragments: list[bytes] = []
        self._fragmented_text = False
        # Before the upgrade: the last bytes of the request seen so far (its end may straddle two
        # reads), then, once the request is whole, the bytes after it (frames sent with the
        # request), which wait for the upgrade. The library's frame parser then starts at a frame
        # boundary, where the fast path can take over.
        self._request_tail = b""
        self._after_request: bytes | None = None
        # The first bytes, until the method tells an upgrade or a GET route (websockets' parser,
        # which takes no request body) from a plain request with a body (``_plain``: a POST to
        # the server API, say), read by h11.
        self._opening: bytes | None = b""
        self._plain: PlainHttpExchange | None = None
        self._inbound: InboundFrames | None = None  # once open, if uncompressed
        self._compressed = False
        self._deadline: Timer | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] | None = None  # HTTP routes and admission only

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = self.set_transport(transport)
        peer = stream.get_extra_info("peername")
        self._peer = self.remote_address = str(peer[0]) if peer else ""
        self._owner.connections.add(self)
        # Slowloris: the whole HTTP exchange up to the upgrade must fit in connect_timeout.
        self._deadline = self._hub.clock.call_later(
            self._hub.config.connect_timeout, self._handshake_too_slow
        )

    def data_received(self, data: bytes) -> None:
        self.reading = True
        try:
            inbound = self._inbound
            if inbound is None:
                if self.session is None:
                    self._before_upgrade(data)
                else:
                    self._to_library(data)
                self._write_output()
                return
            for item in inbound.receive(data):
                if item.__class__ is bytes:
                    self._message(item)
                else:
                    self._on_frame(item)  # type: ignore[arg-type]
            if inbound.library_fed:  # what the library has to answer (pongs, a close)
                inbound.library_fed = False
                self._write_output()
        finally:
            self.reading_done()

    def eof_received(self) -> bool:
        if self._inbound is not None:
            self._inbound.receive_eof()
        else:
            self._protocol().receive_eof()
        self._write_output()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended()
        self._cancel_deadline()
        if self._close_timer is not None:
            self._close_timer.cancel()
        self._owner.connections.discard(self)
        for task in self._tasks or ():
            task.cancel()
        if self.session is not None:
            received = self.ws.close_rcvd if self.ws is not None else None
            if received is not None:
                self.session.connection_lost(received.code, received.reason)
            else:
                self.session.connection_lost(
                    DisconnectCode.ABNORMAL, f"connection lost: {exc or 'no close frame'}"
                )

    # ------------------------------------------------------------------ bytes in

    def _protocol(self) -> ServerProtocol:
        """websockets' protocol object; one that reads the request if none was made yet."""
        if self.ws is None:
            extensions = [ServerPerMessageDeflateFactory()] if self._owner.options.compression else None
            self.ws = ServerProtocol(
                subprotocols=self._owner.subprotocols,
                extensions=extensions,
                max_size=self._hub.config.max_frame_size,
                logger=LIBRARY_LOGGER,
            )
        return self.ws

    def _to_library(self, data: bytes) -> None:
        ws = self._protocol()
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                self._on_request(self._http_request(event.method, event.path, request_fields(event)), event)
            elif isinstance(event, Frame):
                self._on_frame(event)

    def _before_upgrade(self, data: bytes) -> None:
        opening = self._opening
        if opening is not None:
            if opening or len(data) < len(GET):  # (a request's first read is whole, as a rule)
                data = opening + data
                if len(data) < len(GET):
                    self._opening = data
                    return
            self._opening = None
            if not data.startswith(GET):
                self._plain = PlainHttpExchange(
                    self._peer, self._hub.config.max_frame_size, self._owner.client_address
                )
        if self._plain is not None:
            self._plain_request(data)
            return
        after = self._after_request
        if after is not None:
            # Frames the client sent right after its request (before our answer). Reading is
            # paused during admission, so this is rarely more than one read; a peer that keeps
            # sending anyway is cut off at one message's worth.
            if len(after) + len(data) > self._hub.config.max_frame_size + 14:
                self.closing = True
                self._stream().abort()
            else:
                self._after_request = after + data
            return
        seen = self._request_tail + data
        end = seen.find(b"\r\n\r\n")  # the empty line that ends the request's header block
        if end < 0:
            self._request_tail = seen[-3:]
            self._to_library(data)
            return
        request_bytes = end + 4 - len(self._request_tail)
        self._request_tail = b""
        self._after_request = data[request_bytes:]
        # A request that came whole in this read, before the library saw any of it, may be
        # the common upgrade, which is read here; anything else is the library's.
        upgrade = None
        if self.ws is None:
            upgrade = read_upgrade(
                data[:request_bytes], self._owner.subprotocols, self._owner.options.compression
            )
        if upgrade is not None:
            self._on_request(self._http_request("GET", upgrade.target, upgrade.fields), upgrade)
        else:
            self._to_library(data[:request_bytes])

    # ------------------------------------------------------------------ HTTP and upgrade

    def _http_request(self, method: str, target: str, fields: dict[str, str]) -> HttpRequest:
        self.request = to_request(method, target, fields, self._peer, self._owner.options.trusted_proxies)
        self.remote_address = self.request.remote_address
        return self.request

    def _on_request(self, request: HttpRequest, handshake: Request | Upgrade) -> None:
        """``request`` as stelar sees it; ``handshake``, what accepts it: the library's parse,
        or an upgrade read here."""
        options = self._owner.options
        headers = request.headers
        upgrade = "websocket" in headers.get("upgrade", "").lower()
        # A plain GET of the upgrade path reaches a route there, if any (the demo page at "/").
        if request.path != options.path or (not upgrade and request.path in self._hub.http_routes):
            self._spawn(self._serve_route(request))
        elif not upgrade:
            self._respond(
                text_response(426, "this path speaks WebSocket (stelar.v1) only", Upgrade="websocket")
            )
        elif headers.get("sec-websocket-version") != WEBSOCKET_VERSION:
            # RFC 6455 section 4.4: say which version this server speaks.
            self._respond(
                text_response(
                    426,
                    f"unsupported Sec-WebSocket-Version; this server speaks {WEBSOCKET_VERSION}",
                    **{"Sec-WebSocket-Version": WEBSOCKET_VERSION},
                )
            )
        elif (refusal := origin_refusal(headers, options)) is not None:
            self._respond(text_response(403, refusal))
        else:
            try:
                admitted = self._hub.admit_nowait(self.remote_address, PROTOCOL)
            except ConnectionRefused as refused:
                self._respond(to_response(refusal_response(refused)))
                return
            if inspect.isawaitable(admitted):
                self._stream().pause_reading()  # until admitted
                self._spawn(self._admit(handshake, admitted))
            else:
                self._upgrade(handshake, admitted)

    async def _serve_route(self, request: HttpRequest) -> None:
        self._respond(to_response(await serve_route(self._hub.http_routes, request, self._owner.http_log)))

    def _plain_request(self, data: bytes) -> None:
        exchange = self._plain
        if exchange is None or self._tasks is not None:
            return  # answering already: the rest of the stream is not read
        received = exchange.receive(data)
        if isinstance(received, HttpRequest):
            self.request = received
            self.remote_address = received.remote_address
            self._spawn(self._serve_plain(exchange, received))
        elif received is not None:
            self._answer_plain(exchange, received)

    async def _serve_plain(self, exchange: PlainHttpExchange, request: HttpRequest) -> None:
        self._answer_plain(exchange, await serve_route(self._hub.http_routes, request, self._owner.http_log))

    def _answer_plain(self, exchange: PlainHttpExchange, response: HttpResponse) -> None:
        answer = exchange.respond(response)
        if answer is None:
            self._owner.http_log.error("could not answer an HTTP request: %r", response)
        else:
            self.queue(answer)
        self.end()

    async def _admit(self, handshake: Request | Upgrade, admitted: Awaitable[Admission]) -> None:
        try:
            admission = await admitted
        except ConnectionRefused as refusal:
            self._respond(to_response(refusal_response(refusal)))
            return
        if self.closing:
            admission.release()
            return
        self._upgrade(handshake, admission)

    def _upgrade(self, handshake: Request | Upgrade, admission: Admission) -> None:
        if isinstance(handshake, Upgrade):
            # Read here (a strict subset of what the library accepts): answered here, and the
            # library takes over from the first frame.
            ws = self.ws = ServerProtocol(
                state=State.OPEN, max_size=self._hub.config.max_frame_size, logger=LIBRARY_LOGGER
            )
            self.queue(switching_protocols(handshake))
        else:
            ws = self._protocol()
            response = ws.accept(handshake)
            # websockets' parser keeps the request for the connection's life; stelar keeps its
            # own copy of the headers (``self.request``), so the parser's is emptied.
            handshake.headers.clear()
            ws.send_response(response)
            if response.status_code != 101:
                admission.release()
                self._write_output()
                return
        self._cancel_deadline()
        self._compressed = bool(ws.extensions)
        self.session = self._hub.open_session(self, admission)
        self._write_output()
        early, self._after_request = self._after_request or b"", None
        if not self._compressed:
            self._inbound = InboundFrames(ws)
        if early and not self.closing:
            self.data_received(early)
        self.update_reading()

    def _respond(self, response: Response) -> None:
        self._protocol().send_response(response)
        self._write_output()

    def _handshake_too_slow(self) -> None:
        self._deadline = None
        if self.session is None and not self.closing:
            self._owner.handshake_timeouts += 1
            self.closing = True
            self._stream().abort()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    # ------------------------------------------------------------------ frames in

    def _on_frame(self, frame: Frame) -> None:
        """A frame the library parsed (the fast path did not take it)."""
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.TEXT:
            self._fragmented_text = opcode is Opcode.TEXT
            if frame.fin:
                self._whole_message(bytes(frame.data))
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), []
                self._whole_message(data)
        # Ping, pong and close are handled by the protocol object.

    def _whole_message(self, data: bytes) -> None:
        if self._fragmented_text:
            self._text_message(data)
        else:
            self._message(data)

    def _message(self, data: bytes) -> None:
        """One binary message: a stelar frame."""
        if not self.closing and self.session is not None:
            self.session.receive(data)

    def _text_message(self, data: bytes) -> None:
        # The sans-I/O layer leaves decoding text to its caller, so RFC 6455's 1007 is ours.
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self._protocol().fail(1007, "invalid UTF-8 in a text message")
            return
        handler = self._owner.text_handler
        if handler is not None:
            handler(self, text)
        elif (ws := self._protocol()).state is State.OPEN:
            ws.send_close(1003, "stelar.v1 carries binary messages")
            self._start_close_timer()

    # ------------------------------------------------------------------ Connection (hub side)

    def send(self, frame: bytes) -> None:
        # Called for a session, which exists once the upgrade made ``ws`` (no None check: this
        # runs once per delivery of every broadcast).
        if self.ws.state is not State.OPEN or self.closing:  # type: ignore[union-attr]
            return
        if self._compressed or not self._owner.share_encoding:
            # Through the library: a compressed connection has its own deflate context.
            self.ws.send_binary(frame)  # type: ignore[union-attr]
            self._write_output()
        else:
            self.queue(self._owner.wire_frame(frame))

    def send_text(self, text: str) -> None:
        """For text handlers (the conformance mode's echo)."""
        if (ws := self._protocol()).state is State.OPEN:
            ws.send_text(text.encode())
            self._write_output()

    def close(self, code: int, reason: str) -> None:
        if self.overflowed:
            self.end()
            return
        if (ws := self._protocol()).state is State.OPEN:
            ws.send_close(code, reason)
            self._write_output()
            self._start_close_timer()

    def _start_close_timer(self) -> None:
        if self._close_timer is None:
            self._close_timer = self._loop.call_later(CLOSE_HANDSHAKE_TIMEOUT, self._close_handshake_expired)

    def _close_handshake_expired(self) -> None:
        self._close_timer = None
        if not self.closing and self._transport is not None:
            self.closing = True
            self._transport.abort()

    # ------------------------------------------------------------------ output

    def _write_output(self) -> None:
        """Queue what the protocol object produced; an empty chunk means: close the stream."""
        if self.ws is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                self.queue(chunk)
            else:
                self.end()

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(work)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
            if not self._tasks:
                self._tasks = None


class WsTransport(SocketListener[WsConnection]):
    """Listens on ``host``:``port`` at ``path``; the same port serves the hub's HTTP routes."""

    name = PROTOCOL
    # Encode a broadcast's WebSocket frame once for all uncompressed recipients. Only the
    # benchmark turns it off (every frame then takes the library's send path), to show what
    # it saves.
    share_encoding = True

    def __init__(
        self,
        hub: HubPort,
        options: Options,
        *,
        section: str = "ws",
        text_handler: TextHandler | None = None,
        subprotocols: Sequence[Subprotocol] | None = (SUBPROTOCOL,),
        tls: ServerTLS | None = None,
    ) -> None:
        """``options`` are the plugin's section as built (``section`` names it; options that may
        change at run time are read again from ``hub.config``). ``subprotocols``: an upgrade
        must offer one of these (400 otherwise); ``None`` accepts any client (the conformance
        mode's echo). ``tls``: the server's TLS, when it serves this transport (``wss://``)."""
        super().__init__(hub, "ws", "wss", tls, alpn=("http/1.1",))
        self._built_options = options
        self._section = section
        self.text_handler = text_handler
        self.http_log = hub.logger("stelar.http")
        self.handshake_timeouts = 0
        self.subprotocols = list(subprotocols) if subprotocols is not None else None

    def wrap(self, frame: bytes) -> bytes:
        length = len(frame)
        if length < 126:  # most answers: the header inline, one call fewer per frame sent
            return bytes((0x82, length)) + frame
        return binary_frame_header(length) + frame

    @property
    def options(self) -> Options:
        """The ``ws`` options in force (``update_config`` may have changed some since)."""
        return self.hub.config.plugins.get(self._section, self._built_options)

    def client_address(self, peer: str, headers: Mapping[str, str]) -> str:
        """Who sent a request from ``peer``, per the ``trusted_proxies`` in force."""
        return client_address(peer, headers, self.options.trusted_proxies)

    @property
    def addresses(self) -> list[str]:
        return self.urls(self.options.path)

    def stats(self) -> Mapping[str, int]:
        return {**super().stats(), "handshake_timeouts": self.handshake_timeouts}

    async def start(self) -> None:
        port = self.options.port
        await self.listen(lambda: WsConnection(self), DEFAULT_PORT if port is None else port)
