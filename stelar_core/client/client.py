"""``StelarClient``: connects by URL over any installed transport, reconnects with backoff and
full jitter, queues while offline, and keeps its rooms across reconnections."""

from __future__ import annotations

import asyncio
import enum
import logging
import random as random_module
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, overload
from urllib.parse import urlsplit

import attrs

from stelar_core import tls
from stelar_core.client.answers import answer_request
from stelar_core.client.backoff import full_jitter_delay
from stelar_core.client.files import encode_file
from stelar_core.client.listeners import Listeners
from stelar_core.client.options import ClientOptions
from stelar_core.clock import REAL_CLOCK, Clock, Timer, wait_for
from stelar_core.errors import AckError, AckTimeout, ConfigError, NotConnected, RemoteError
from stelar_core.payloads import make_converter, structure
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.protocol import DisconnectCode, FrameType, dump_json
from stelar_core.protocol.acks import ack_timeout
from stelar_core.protocol.client import (
    ClientEvent,
    ClientSession,
    ErrorReceived,
    EventReceived,
    InvalidFrame,
    RequestReceived,
    ResponseReceived,
    RoomAnswered,
    Welcome,
)
from stelar_core.transports.base import ClientLink
from stelar_core.transports.connectors import find_connector

log = logging.getLogger("stelar.client")

H = TypeVar("H", bound=Callable[..., Any])
T = TypeVar("T")
_HEARTBEAT_FACTOR = 2.5


class ClientState(enum.StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


@attrs.define(slots=True)
class _Queued:
    kind: FrameType
    event: str
    payload: bytes
    ack_id: int | None = None


def normalize_url(target: str | int, mode: str | None) -> str:
    """``ws://``/``wss://``/``tcp://``/``tcps://``/``memory://`` as given; the seed's short forms
    (``"localhost:3000"``, ``3000``) become ``ws://`` or, with ``mode="tcp"``, ``tcp://``."""
    text = str(target)
    if "://" not in text:
        host_port = f"localhost:{text}" if text.isdigit() else text
        return f"tcp://{host_port}" if mode == "tcp" else f"ws://{host_port}/"
    scheme = urlsplit(text).scheme
    if mode is not None and scheme.rstrip("s") != mode and scheme != "memory":
        raise ConfigError(f"option 'mode' = {mode!r} does not match the URL {text!r}")
    return text


class _LinkReceiver:
    """Frames of one connection attempt; a late callback from an old link is ignored."""

    def __init__(self, client: StelarClient, generation: int) -> None:
        self._client = client
        self._generation = generation

    def frame_received(self, frame: bytes) -> None:
        if self._client._generation == self._generation:
            self._client._frame_received(frame)

    def connection_lost(self, code: int, reason: str) -> None:
        if self._client._generation == self._generation:
            self._client._link_lost(code, reason)


class StelarClient:
    """``StelarClient(url, **options)``; see ``docs/client.md``.

    ``random``, ``sleep`` and ``clock`` can be replaced: tests check backoff, request timeouts
    and the heartbeat watchdog without waiting through them (``stelar_core.testing.FakeClock``).
    """

    def __init__(
        self,
        url: str | int,
        *,
        random: Callable[[], float] = random_module.random,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Clock = REAL_CLOCK,
        **options: Any,
    ) -> None:
        self._options = ClientOptions.build(options)
        self._url = normalize_url(url, self._options.mode)
        self._random = random
        self._sleep = sleep
        self._clock = clock
        self._pm = build_plugin_manager()
        # Structures the answers of request(..., result=T); register hooks on it for your types.
        self.converter = make_converter()
        # Made once (and checked now: a missing TLS plugin or a bad certificate fails here).
        self._ssl_context = (
            tls.client_context(self._url, self._options.connect_options(), self._pm)
            if tls.is_secure(self._url)
            else None
        )
        self._state = ClientState.DISCONNECTED
        self.id: str | None = None
        self.messages_sent = 0
        self.messages_received = 0
        self.dropped_messages = 0
        self.last_error: BaseException | None = None
        self.connect_time: float | None = None
        self._listeners = Listeners(self._spawn, self._listener_failed)
        self._ack_handlers: dict[str, Callable[..., Any]] = {}
        self._queue: deque[_Queued] = deque()
        # The protocol itself (frames, ack ids, pongs) lives in the sans-I/O session; this class
        # adds the connection's life: reconnection, the offline queue, futures, listeners.
        self._session = ClientSession(max_in_flight=self._options.max_pending_requests)
        self._requests: dict[int, asyncio.Future[Any]] = {}
        self._rooms: set[str] = set()
        self._room_answers: dict[tuple[FrameType, str], deque[asyncio.Future[Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._link: ClientLink | None = None
        self._generation = 0
        self._manager: asyncio.Task[None] | None = None
        self._first_connect: asyncio.Future[None] | None = None
        self._welcome: asyncio.Future[Welcome] | None = None
        self._lost: asyncio.Future[tuple[int, str]] | None = None
        self._closing = False
        self._last_received = 0.0
        self._watchdog: Timer | None = None
        self._heartbeat_timeout: float | None = None

    # ================================================================== state

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is ClientState.CONNECTED

    @property
    def url(self) -> str:
        return self._url

    @url.setter
    def url(self, value: str) -> None:
        if self._manager is not None and not self._manager.done():
            raise RuntimeError("the URL can change only while disconnected")
        self._url = normalize_url(value, self._options.mode)

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    @property
    def rooms(self) -> frozenset[str]:
        return frozenset(self._rooms)

    def get_options(self) -> dict[str, Any]:
        data = attrs.asdict(self._options)
        data["hooks"] = sorted(self._options.hooks)
        return data

    def update_options(self, **options: Any) -> None:
        """Change options now, all or nothing; a bad value raises ``ConfigError``."""
        self._options = ClientOptions.build(options, base=self._options)

    def _set_state(self, state: ClientState) -> None:
        if state is not self._state:
            previous, self._state = self._state, state
            self._hook("on_state_change", from_state=previous.value, to_state=state.value)

    # ================================================================== lifecycle

    async def connect(self) -> None:
        """Connect and wait for the server's welcome. With ``reconnection`` a failed first attempt
        is retried like a lost connection; ``NotConnected`` once attempts are exhausted."""
        if self._manager is not None and not self._manager.done():
            assert self._first_connect is not None
            await asyncio.shield(self._first_connect)
            return
        self._closing = False
        self._first_connect = asyncio.get_running_loop().create_future()
        self._manager = asyncio.ensure_future(self._run())
        await asyncio.shield(self._first_connect)

    async def disconnect(self) -> None:
        """Close and release everything: the link, timers, tasks; requests fail with
        ``NotConnected``; the offline queue is dropped; the client can ``connect()`` again."""
        self._closing = True
        if self._link is not None:
            self._link.close(DisconnectCode.NORMAL, "client disconnected")
        if self._lost is not None and not self._lost.done():
            self._lost.set_result((DisconnectCode.NORMAL, "client disconnected"))
        if self._manager is not None:
            await asyncio.gather(self._manager, return_exceptions=True)
            self._manager = None
        self._stop_watchdog()
        self._fail_requests(list(self._requests), "client disconnected")
        self._queue.clear()
        for waiters in self._room_answers.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(NotConnected("client disconnected"))
        self._room_answers.clear()
        for task in tuple(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._set_state(ClientState.DISCONNECTED)

    async def __aenter__(self) -> StelarClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def _run(self) -> None:
        """Connect, serve until the link is lost, back off, again; until told to stop."""
        attempt = 0
        while not self._closing:
            if attempt == 0:
                self._set_state(ClientState.CONNECTING)
            try:
                await self._open_link()
            except Exception as exc:
                self._record_error(exc, "connect")
            else:
                attempt = 0
                self._connected()
                assert self._lost is not None
                code, reason = await self._lost
                self._disconnected(code, reason)
            if self._closing or not self._options.reconnection:
                break
            attempt += 1
            limit = self._options.reconnection_attempts
            if limit is not None and attempt > limit:
                self._listeners.emit("reconnect_failed")
                break
            self._set_state(ClientState.RECONNECTING)
            self._listeners.emit("reconnecting", attempt)
            await self._sleep(self._reconnect_delay(attempt))
        self._set_state(ClientState.DISCONNECTED)
        if self._first_connect is not None and not self._first_connect.done():
            self._first_connect.set_exception(
                NotConnected(f"could not connect to {self._url}: {self.last_error}")
            )

    def _reconnect_delay(self, attempt: int) -> float:
        options = self._options
        base, maximum = options.reconnection_delay, options.max_reconnection_delay
        if options.custom_reconnect_delay is not None:
            delay = float(options.custom_reconnect_delay(attempt, base, maximum))
        else:
            delay = full_jitter_delay(attempt, base, maximum, self._random)
        chosen = self._hook("on_reconnect_delay", attempt=attempt, default_delay=delay)
        return float(chosen) if isinstance(chosen, int | float) and not isinstance(chosen, bool) else delay

    async def _open_link(self) -> None:
        loop = asyncio.get_running_loop()
        self._generation += 1
        self._welcome = loop.create_future()
        self._lost = loop.create_future()
        connector = find_connector(self._url, self._pm)
        timeout = self._options.connect_timeout
        self._link = await asyncio.wait_for(
            connector(
                self._url,
                _LinkReceiver(self, self._generation),
                self._options.connect_options(self._clock, self._ssl_context),
            ),
            timeout,
        )
        self._session.connect(dict(self._options.auth))
        for frame in self._session.data_to_send():  # the handshake: not counted in messages_sent
            self._link.send(frame)
        try:
            welcome = await asyncio.wait_for(asyncio.shield(self._welcome), timeout)
        except BaseException:
            self._link.close(DisconnectCode.NORMAL, "handshake failed")
            self._link = None
            raise
        self.id = welcome.id
        interval = welcome.heartbeat
        self._heartbeat_timeout = self._options.heartbeat_timeout or (
            interval * _HEARTBEAT_FACTOR if interval is not None else None
        )

    def _connected(self) -> None:
        self.connect_time = time.time()
        self._last_received = self._clock.now()
        self._set_state(ClientState.CONNECTED)
        self._start_watchdog()
        for room in sorted(self._rooms | self._rooms_waiting()):
            self._session.join(room)
        self._transmit()
        self._drain_queue()
        if self._first_connect is not None and not self._first_connect.done():
            self._first_connect.set_result(None)
        self._listeners.emit("connect")

    def _disconnected(self, code: int, reason: str) -> None:
        self._link = None
        self._stop_watchdog()
        lost = self._session.connection_lost()
        self._fail_requests(lost, f"connection lost before the answer ({code} {reason})")
        self._listeners.emit("disconnect", {"code": code, "reason": reason})

    def _fail_requests(self, ack_ids: list[int], reason: str) -> None:
        for ack_id in ack_ids:
            future = self._requests.pop(ack_id, None)
            self._session.forget_request(ack_id)
            if future is not None and not future.done():
                future.set_exception(NotConnected(reason))

    def _link_lost(self, code: int, reason: str) -> None:
        if self._welcome is not None and not self._welcome.done():
            errors = f"{code} {reason}"
            self._welcome.set_exception(NotConnected(f"server closed the connection: {errors}"))
        if self._lost is not None and not self._lost.done():
            self._lost.set_result((code, reason))

    # ================================================================== heartbeats

    def _start_watchdog(self) -> None:
        self._stop_watchdog()
        if self._heartbeat_timeout is not None:
            self._watchdog = self._clock.call_later(self._heartbeat_timeout / 4, self._check_heartbeat)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _check_heartbeat(self) -> None:
        assert self._heartbeat_timeout is not None
        silent = self._clock.now() - self._last_received
        if silent > self._heartbeat_timeout:
            self._record_error(NotConnected(f"server silent for {silent:.1f}s"), "heartbeat")
            # Gone for us now: a late answer from this link is ignored (new generation).
            self._generation += 1
            if self._link is not None:
                self._link.close(DisconnectCode.SERVER_ERROR, "heartbeat timeout")
            if self._lost is not None and not self._lost.done():
                self._lost.set_result((DisconnectCode.ABNORMAL, "heartbeat timeout"))
            return
        self._start_watchdog()

    # ================================================================== frames in

    def _frame_received(self, data: bytes) -> None:
        self._last_received = self._clock.now()
        self.messages_received += 1
        self._session.receive_frame(data)
        for event in self._session.events_received():
            self._dispatch(event)
        self._transmit()  # pongs

    def _dispatch(self, event: ClientEvent) -> None:
        if isinstance(event, EventReceived):
            self._hook("on_message", event=event.event, data=event.data, is_binary=event.binary)
            self._listeners.emit(event.event, event.data)
            self._listeners.emit_to_any(event.event, event.data)
        elif isinstance(event, Welcome):
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_result(event)
        elif isinstance(event, ResponseReceived):
            future = self._requests.pop(event.ack_id, None)
            if future is not None and not future.done():
                if event.error is not None:
                    future.set_exception(event.error)
                else:
                    future.set_result(event.value)
        elif isinstance(event, RequestReceived):
            self._spawn(self._answer(event))
        elif isinstance(event, RoomAnswered):
            self._room_answered(event)
        elif isinstance(event, ErrorReceived):
            self._record_error(RemoteError(event.code, event.message), "server")
        elif isinstance(event, InvalidFrame):
            self._record_error(event.error, "receive")
        # Pings are answered by the session; pongs and the server's goodbye need nothing here
        # (the link reports the end of the connection).

    async def _answer(self, request: RequestReceived) -> None:
        await answer_request(self._session, self._ack_handlers, request)
        self._transmit()

    # ================================================================== sending

    def _transmit(self) -> None:
        """Send what the session has for the server (nothing without a link)."""
        frames = self._session.data_to_send()
        if self._link is not None:
            for frame in frames:
                self._link.send(frame)
            self.messages_sent += len(frames)

    def _send_or_queue(self, entry: _Queued) -> None:
        if self._link is not None and self._state is ClientState.CONNECTED:
            if entry.ack_id is not None:
                self._session.send_request(entry.ack_id, entry.event, entry.payload)
            else:
                self._session.emit_payload(entry.kind, entry.event, entry.payload)
            self._transmit()
            return
        if self._options.message_queue_size == 0:
            self._drop(entry)
            return
        if len(self._queue) >= self._options.message_queue_size:
            self._drop(self._queue.popleft())
        self._queue.append(entry)
        self._hook("on_message_queued", event=entry.event, queue_size=len(self._queue))

    def _drop(self, entry: _Queued) -> None:
        self.dropped_messages += 1
        if entry.ack_id is not None:
            self._fail_requests([entry.ack_id], "dropped from the full offline queue")

    def _drain_queue(self) -> None:
        sent = 0
        while self._queue and self._state is ClientState.CONNECTED:
            entry = self._queue.popleft()
            if entry.ack_id is not None and entry.ack_id not in self._requests:
                continue  # the request timed out while offline
            self._send_or_queue(entry)
            sent += 1
        if sent:
            self._hook("on_queue_drained", count=sent)

    def _check_payload(self, payload: bytes) -> None:
        if len(payload) > self._options.max_payload_size:
            raise ValueError(
                f"payload is {len(payload)} bytes, max_payload_size is {self._options.max_payload_size}"
            )

    def emit(self, event: str, data: Any = None) -> bool:
        """Send an event, or queue it while offline. False when ``on_before_emit`` cancelled it."""
        if self._hook("on_before_emit", event=event, data=data) is False:
            return False
        payload = dump_json(data)
        self._check_payload(payload)
        self._send_or_queue(_Queued(FrameType.JSON, event, payload))
        return True

    def emit_binary(self, event: str, data: bytes) -> bool:
        if self._hook("on_before_emit", event=event, data=data) is False:
            return False
        payload = bytes(data)
        self._check_payload(payload)
        self._send_or_queue(_Queued(FrameType.BINARY, event, payload))
        return True

    def send_file(
        self,
        source: str | Path | BinaryIO,
        *,
        event: str = "file",
        name: str | None = None,
        content_type: str | None = None,
    ) -> bool:
        """Send a file's bytes with its name, size and content type (``parse_file`` reads it)."""
        return self.emit_binary(event, encode_file(source, name=name, content_type=content_type))

    @overload
    async def request(
        self, event: str, data: Any = None, *, timeout: float | None = None, result: type[T]
    ) -> T: ...
    @overload
    async def request(
        self, event: str, data: Any = None, *, timeout: float | None = None, result: None = None
    ) -> Any: ...
    async def request(
        self, event: str, data: Any = None, *, timeout: float | None = None, result: Any = None
    ) -> Any:
        """Ask the server's ``on_ack(event)`` handler. Queued while offline, within ``timeout``
        (default ``ack_timeout``). Raises ``AckError`` (the server's error), ``AckTimeout``,
        or ``NotConnected`` when the connection is lost before the answer.

        ``data`` may be an attrs instance or a dataclass (sent as its fields). With ``result``,
        the answer is structured into that type (an attrs class, dataclass, TypedDict or plain
        type, as typed handlers take theirs): ``InvalidPayload`` names what does not fit."""
        answer = await self._request(event, data, timeout)
        if result is None:
            return answer
        return structure(self.converter, answer, result, event)

    async def _request(self, event: str, data: Any, timeout: float | None) -> Any:
        payload = dump_json(data)
        self._check_payload(payload)
        ack_id = self._session.open_request()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[ack_id] = future
        self._send_or_queue(_Queued(FrameType.ACK_REQUEST, event, payload, ack_id))
        timeout = timeout or self._options.ack_timeout
        try:
            return await wait_for(future, timeout, self._clock, lambda: ack_timeout(event, timeout))
        finally:
            self._requests.pop(ack_id, None)
            self._session.forget_request(ack_id)

    # ================================================================== rooms

    def _rooms_waiting(self) -> set[str]:
        return {
            room for (kind, room), waiters in self._room_answers.items() if kind is FrameType.JOIN and waiters
        }

    def _room_answered(self, answer: RoomAnswered) -> None:
        key = (answer.kind, answer.room)
        if answer.kind is FrameType.JOIN:
            if answer.ok:
                self._rooms.add(answer.room)
            else:
                self._rooms.discard(answer.room)
        waiters = self._room_answers.get(key)
        if waiters:
            waiters.popleft().set_result(answer.ok)
            if not waiters:
                del self._room_answers[key]
        elif answer.kind is FrameType.JOIN and answer.error is not None:
            self._record_error(RemoteError(answer.error.code, f"rejoining {answer.room!r} refused"), "rejoin")

    async def _room_request(self, kind: FrameType, room: str, *, send: bool) -> bool:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiters = self._room_answers.setdefault((kind, room), deque())
        waiters.append(future)
        if send:
            if kind is FrameType.JOIN:
                self._session.join(room)
            else:
                self._session.leave(room)
            self._transmit()
        timeout = self._options.ack_timeout
        try:
            accepted: bool = await wait_for(
                future,
                timeout,
                self._clock,
                lambda: AckTimeout(f"no answer to {kind.name.lower()} {room!r} within {timeout}s"),
            )
        except AckTimeout:
            if future in waiters:
                waiters.remove(future)
            raise
        return accepted

    async def join_room(self, room: str) -> bool:
        """Join ``room``; True if the server accepted. Offline, the join is sent (and answered)
        when the connection is back. Joined rooms are joined again after every reconnection."""
        return await self._room_request(FrameType.JOIN, room, send=self.connected)

    async def leave_room(self, room: str) -> bool:
        if not self.connected:
            self._rooms.discard(room)
            return True
        left = await self._room_request(FrameType.LEAVE, room, send=True)
        if left:
            self._rooms.discard(room)
        return left

    # ================================================================== listeners

    def on(self, event: str, handler: H | None = None) -> Any:
        """Listen to ``event`` (a server event, or ``connect``, ``disconnect``, ``reconnecting``,
        ``reconnect_failed``, ``error``); a call or a decorator; handlers sync or async."""

        def add(fn: H) -> H:
            self._listeners.add(event, fn)
            return fn

        return add if handler is None else add(handler)

    def once(self, event: str, handler: H | None = None) -> Any:
        def add(fn: H) -> H:
            self._listeners.add_once(event, fn)
            return fn

        return add if handler is None else add(handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove ``handler`` (added with ``on`` or ``once``) from ``event``, or every handler."""
        self._listeners.remove(event, handler)

    def on_any(self, handler: H) -> H:
        """``handler(event, data)`` for every server event."""
        self._listeners.add_any(handler)
        return handler

    def on_ack(self, name: str, handler: H | None = None) -> Any:
        """Answer the server's requests named ``name``: the return value is the answer."""

        def add(fn: H) -> H:
            self._ack_handlers[name] = fn
            return fn

        return add if handler is None else add(handler)

    def remove_all_listeners(self, event: str | None = None) -> None:
        self._listeners.clear(event)

    def _listener_failed(self, listener: Callable[..., Any], error: Exception) -> None:
        log.error("listener %r failed", listener, exc_info=error)
        self._hook("on_error", error=error, context="listener")

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================== hooks and errors

    def _hook(self, name: str, **kwargs: Any) -> Any:
        hook = self._options.hooks.get(name)
        if hook is None:
            return None
        try:
            return hook(**kwargs)
        except Exception:
            log.exception("client hook %s failed", name)
            return None

    def _record_error(self, error: BaseException, context: str) -> None:
        self.last_error = error
        log.debug("client error in %s: %s", context, error)
        self._hook("on_error", error=error, context=context)
        self._listeners.emit("error", error)


__all__ = ["AckError", "ClientState", "StelarClient"]
