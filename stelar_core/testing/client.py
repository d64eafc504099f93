"""A small client that speaks the wire protocol over any transport's connector.

It exists to test servers and transports precisely: every frame it receives is kept, and it can
send raw bytes. It does not reconnect or queue (that is ``StelarClient``'s job).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from stelar_core.client.answers import answer_request, room_answer
from stelar_core.errors import AckError, NotConnected, ProtocolError
from stelar_core.protocol import DisconnectCode, FrameType, dump_json, encode_frame
from stelar_core.protocol.client import (
    ClientEvent,
    ClientSession,
    DisconnectReceived,
    ErrorReceived,
    EventReceived,
    InvalidFrame,
    MessagesDropped,
    PingReceived,
    PongReceived,
    PresenceChanged,
    RequestReceived,
    ResponseReceived,
    RoomAnswered,
    Welcome,
)
from stelar_core.protocol.publications import Position
from stelar_core.providers import TransportProvider
from stelar_core.transports.base import ClientLink, ConnectOptions, Connector
from stelar_core.transports.connectors import find_connector

if TYPE_CHECKING:
    from stelar_core.server import StelarServer

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_KEPT = 100_000


@attrs.frozen(slots=True)
class ReceivedEvent:
    event: str
    data: Any
    binary: bool = False
    room: str | None = None  # a publication's room and position (rooms with history)
    position: Position | None = None


class TestClient:
    """Connect with :func:`connect_client`; then ``emit``, ``request``, ``join``, and await
    ``next_event()`` / ``next_error()`` / ``closed``.

    Received events and errors are kept (at most ``max_kept`` each; more is a test failure,
    raised by the next wait) until read. Pings are answered unless ``auto_pong=False``.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *, auto_pong: bool = True, max_kept: int = DEFAULT_MAX_KEPT) -> None:
        self.auto_pong = auto_pong
        self.max_kept = max_kept
        self.id: str | None = None
        self.welcome: dict[str, Any] = {}
        self.link: ClientLink | None = None
        self.frames_received = 0
        self.events_received = 0
        self.pings_received = 0
        self.dropped: dict[str, int] = {}  # messages lossy send queues dropped, by room
        self.presence_changes: list[PresenceChanged] = []  # presence snapshots and diffs, in order
        self.pongs: list[bytes] = []
        self.disconnect: dict[str, Any] | None = None
        self.ack_handlers: dict[str, Callable[[Any], Any]] = {}
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.closed: asyncio.Future[tuple[int, str]] = loop.create_future()
        self._events: deque[ReceivedEvent] = deque()
        self._errors: deque[tuple[str, dict[str, Any]]] = deque()
        self._overflow = False
        self._arrived = asyncio.Event()
        # Every frame this client understands goes through the protocol's client session.
        self.session = ClientSession(auto_pong=auto_pong, max_in_flight=1 << 20)
        self._requests: dict[int, asyncio.Future[Any]] = {}
        # Frames from the server that broke the protocol (a test of the server asserts none).
        self.invalid_frames: list[ProtocolError] = []
        self._room_answers: dict[tuple[FrameType, str], deque[asyncio.Future[Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ FrameReceiver

    def frame_received(self, data: bytes) -> None:
        self.frames_received += 1
        self.session.receive_frame(data)
        for event in self.session.events_received():
            self._handle(event)
        self._flush()
        self._arrived.set()

    def _handle(self, event: ClientEvent) -> None:
        if isinstance(event, EventReceived):
            self.events_received += 1
            self._keep(
                self._events, ReceivedEvent(event.event, event.data, event.binary, event.room, event.position)
            )
        elif isinstance(event, Welcome):
            self.id = event.id
            self.welcome = event.body
            if not self.connected.done():
                self.connected.set_result(self.welcome)
        elif isinstance(event, ErrorReceived):
            self._keep(self._errors, (event.code, event.body if isinstance(event.body, dict) else {}))
        elif isinstance(event, PresenceChanged):
            self.presence_changes.append(event)
        elif isinstance(event, MessagesDropped):
            self.dropped[event.room] = self.dropped.get(event.room, 0) + event.count
        elif isinstance(event, PingReceived):
            self.pings_received += 1
        elif isinstance(event, PongReceived):
            self.pongs.append(event.payload)
        elif isinstance(event, ResponseReceived):
            self._settle(event)
        elif isinstance(event, RequestReceived):
            task = asyncio.ensure_future(self._answer(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(event, RoomAnswered):
            waiters = self._room_answers.get((event.kind, event.room))
            if waiters:
                waiters.popleft().set_result(room_answer(event))
        elif isinstance(event, DisconnectReceived):
            self.disconnect = {"code": event.code, "reason": event.reason}
        elif isinstance(event, InvalidFrame):
            self.invalid_frames.append(event.error)

    def _settle(self, response: ResponseReceived) -> None:
        future = self._requests.pop(response.ack_id, None)
        if future is None or future.done():
            return
        if response.error is not None:
            future.set_exception(response.error)
        else:
            future.set_result(response.value)

    def connection_lost(self, code: int, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result((code, reason))
        if not self.connected.done():
            self.connected.set_exception(NotConnected(f"server closed the connection: {code} {reason}"))
            self.connected.exception()  # retrieved here; waiters still see it
        self.session.connection_lost()
        for future in self._requests.values():
            if not future.done():
                future.set_exception(NotConnected("connection closed"))
        self._requests.clear()
        self._arrived.set()

    def _keep(self, queue: deque[Any], item: Any) -> None:
        if len(queue) >= self.max_kept:
            self._overflow = True
        else:
            queue.append(item)

    async def _answer(self, request: RequestReceived) -> None:
        await answer_request(self.session, self.ack_handlers, request)
        self._flush()

    def _flush(self) -> None:
        for frame in self.session.data_to_send():
            self.send_raw(frame)

    # ------------------------------------------------------------------ sending

    def pause_reading(self) -> None:
        """Play a client that stopped reading: the server sees a peer that does not read."""
        assert self.link is not None, "not connected"
        self.link.pause_reading()

    def resume_reading(self) -> None:
        assert self.link is not None, "not connected"
        self.link.resume_reading()

    def send_raw(self, data: bytes) -> None:
        """Send bytes as one frame, unchecked (for bad-input tests)."""
        if self.link is None:
            raise NotConnected("not connected")
        self.link.send(data)

    def send_frame(
        self, kind: FrameType, event: str = "", payload: bytes = b"", ack_id: int | None = None
    ) -> None:
        self.send_raw(encode_frame(kind, event, payload, ack_id))

    def emit(self, event: str, data: Any = None) -> None:
        self.send_frame(FrameType.JSON, event, dump_json(data))

    def emit_binary(self, event: str, data: bytes) -> None:
        self.send_frame(FrameType.BINARY, event, data)

    async def request(
        self, event: str, data: Any = None, *, timeout: float = DEFAULT_TIMEOUT, raw: bytes | None = None
    ) -> Any:
        """Ask the server; ``raw`` sends those payload bytes instead of ``data`` as JSON."""
        ack_id = self.session.request(event, data, payload=raw)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[ack_id] = future
        self._flush()
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._requests.pop(ack_id, None)
            self.session.forget_request(ack_id)

    async def join(
        self, room: str, *, since: Position | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Any:
        """Join ``room`` (from ``since``); returns the server's answer (``{"ok": true, ...}`` or
        ``{"error": ...}``)."""
        future = self.expect_room_answer(FrameType.JOIN, room)
        self.session.join(room, since)
        self._flush()
        return await asyncio.wait_for(future, timeout)

    async def leave(self, room: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        return await self._room_request(FrameType.LEAVE, room, timeout)

    async def _room_request(self, kind: FrameType, room: str, timeout: float) -> Any:
        future = self.expect_room_answer(kind, room)
        self.send_frame(kind, room)
        return await asyncio.wait_for(future, timeout)

    def expect_room_answer(self, kind: FrameType, room: str) -> asyncio.Future[Any]:
        """A future of the next answer to a join or leave of ``room`` (for one sent raw)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._room_answers.setdefault((kind, room), deque()).append(future)
        return future

    def on_ack(self, name: str, handler: Callable[[Any], Any]) -> None:
        """Answer the server's requests named ``name`` with ``handler(data)``."""
        self.ack_handlers[name] = handler

    # ------------------------------------------------------------------ receiving

    async def _wait_for(self, queue: deque[Any], what: str, timeout: float) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                if self._overflow:
                    raise AssertionError(f"test client kept more than {self.max_kept} unread items")
                if queue:
                    return queue.popleft()
                if self.closed.done():
                    raise NotConnected(f"connection closed while waiting for {what}: {self.closed.result()}")
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until ``condition()`` holds, checking after each frame received."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._arrived.clear()
                await self._arrived.wait()

    async def next_event(self, *, timeout: float = DEFAULT_TIMEOUT) -> ReceivedEvent:
        item: ReceivedEvent = await self._wait_for(self._events, "an event", timeout)
        return item

    async def next_error(self, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[str, dict[str, Any]]:
        """The next error frame as ``(code, body)``."""
        item: tuple[str, dict[str, Any]] = await self._wait_for(self._errors, "an error", timeout)
        return item

    def pending_events(self) -> list[ReceivedEvent]:
        """Events received and not yet read (and forget them)."""
        events = list(self._events)
        self._events.clear()
        return events

    async def wait_closed(self, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    def close(self, code: int = DisconnectCode.NORMAL, reason: str = "") -> None:
        if self.link is not None and not self.closed.done():
            self.link.close(code, reason)
        for task in self._tasks:
            task.cancel()


async def connect_client(
    server: StelarServer,
    transport: str | None = None,
    *,
    auth: dict[str, Any] | None = None,
    handshake: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    client: TestClient | None = None,
    **connector_options: Any,
) -> TestClient:
    """Open a :class:`TestClient` to a running ``server`` over ``transport`` (default: the first).

    ``connector_options`` are :class:`ConnectOptions` fields (``local_address``, which the memory
    transport presents as the peer's address; ``ca_file``, ``reject_unauthorized``, ``origin``...).
    """
    name = transport or server.transports[0].name
    provider = server.providers["transport"].get(name, "transport").factory
    connector = provider.connector if isinstance(provider, TransportProvider) else None
    if connector is None:
        raise LookupError(f"transport {name!r} has no client connector")
    return await _open(
        connector, server.addresses[name][0], client, auth, handshake, timeout, connector_options
    )


async def connect_url(
    url: str,
    *,
    auth: dict[str, Any] | None = None,
    handshake: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    client: TestClient | None = None,
    **connector_options: Any,
) -> TestClient:
    """Open a :class:`TestClient` to ``url`` (``tcp://host:port``, ``tcps://...``, ...) through
    the installed transport that handles its scheme."""
    return await _open(find_connector(url), url, client, auth, handshake, timeout, connector_options)


async def _open(
    connector: Connector,
    url: str,
    client: TestClient | None,
    auth: dict[str, Any] | None,
    handshake: bool,
    timeout: float,
    connector_options: dict[str, Any],
) -> TestClient:
    """With ``handshake`` the connect frame is sent and the answer awaited; a refusal raises
    :class:`NotConnected` with the server's error."""
    client = client or TestClient()
    client.link = await connector(url, client, ConnectOptions(**connector_options))
    if handshake:
        client.send_frame(FrameType.CONNECT, payload=dump_json({"auth": auth or {}}))
        try:
            await asyncio.wait_for(client.connected, timeout)
        except NotConnected as exc:
            errors = [f"{code}: {body.get('message')}" for code, body in client._errors]
            raise NotConnected(f"{exc}; errors received: {errors}") from None
    return client


__all__ = ["AckError", "ReceivedEvent", "TestClient", "connect_client", "connect_url"]
