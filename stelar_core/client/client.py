"""``StelarClient``: connects by URL over any installed transport, reconnects with backoff and
full jitter, queues while offline, and keeps its rooms across reconnections.

A thin facade over parts with one job each: ``link`` (connecting, reconnecting, the heartbeat
watchdog, the state), ``outbound`` (the offline queue and pending requests), ``rooms``,
``listeners``, all speaking through one sans-I/O ``ClientSession`` (``channel``)."""

from __future__ import annotations

import asyncio
import logging
import random as random_module
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, overload
from urllib.parse import urlsplit

import attrs

from stelar_core import tls
from stelar_core.client.answers import answer_request
from stelar_core.client.channel import Channel, ClientServices
from stelar_core.client.files import encode_file
from stelar_core.client.link import ClientState, LinkEvents, LinkKeeper
from stelar_core.client.listeners import Listeners
from stelar_core.client.options import ClientOptions
from stelar_core.client.outbound import Outbound, Queued
from stelar_core.client.rooms import ClientRooms, RoomHistory, RoomJoin
from stelar_core.clock import REAL_CLOCK, Clock
from stelar_core.errors import AckError, ConfigError, NotConnected, RemoteError
from stelar_core.payloads import make_converter, structure
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.protocol import FrameType, dump_json
from stelar_core.protocol.client import (
    ClientEvent,
    ClientSession,
    ErrorReceived,
    EventReceived,
    InvalidFrame,
    MessagesDropped,
    PresenceChanged,
    RequestReceived,
    ResponseReceived,
    RoomAnswered,
    Welcome,
)
from stelar_core.protocol.publications import HISTORY_REQUEST, Position
from stelar_core.transports.connectors import find_connector

log = logging.getLogger("stelar.client")

H = TypeVar("H", bound=Callable[..., Any])
T = TypeVar("T")


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
        self._pm = build_plugin_manager()
        # Structures the answers of request(..., result=T); register hooks on it for your types.
        self.converter = make_converter()
        # Made once (and checked now: a missing TLS plugin or a bad certificate fails here).
        ssl_context = (
            tls.client_context(self._url, self._options.connect_options(), self._pm)
            if tls.is_secure(self._url)
            else None
        )
        self.messages_received = 0
        self.last_error: BaseException | None = None
        self._welcome: Welcome | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners = Listeners(self._spawn, self._listener_failed)
        self._ack_handlers: dict[str, Callable[..., Any]] = {}
        # The protocol itself (frames, ack ids, pongs) lives in the sans-I/O session.
        self._channel = Channel(ClientSession(max_in_flight=self._options.max_pending_requests))
        services = ClientServices(
            channel=self._channel,
            options=lambda: self._options,
            clock=clock,
            hook=self._hook,
            record_error=self._record_error,
            spawn=self._spawn,
        )
        self._outbound = Outbound(services)
        self._rooms = ClientRooms(services, self._listeners.emit)
        events = LinkEvents(
            opened=self._link_opened,
            closed=self._link_closed,
            frame=self._frame_received,
            notify=self._listeners.emit,
        )
        self._link = LinkKeeper(
            services,
            events,
            connector=lambda: find_connector(self._url, self._pm),
            url=lambda: self._url,
            connect_options=lambda: self._options.connect_options(clock, ssl_context),
            random=random,
            sleep=sleep,
        )

    # ================================================================== state

    @property
    def state(self) -> ClientState:
        return self._link.state

    @property
    def connected(self) -> bool:
        return self._link.state is ClientState.CONNECTED

    @property
    def id(self) -> str | None:
        return self._link.id

    @property
    def resumed(self) -> bool:
        """Whether the current connection resumed the session of the previous one (same ID,
        rooms and metadata; nothing sent was lost or handled twice). False for a new session."""
        return self._welcome is not None and self._welcome.resumed

    @property
    def connect_time(self) -> float | None:
        return self._link.connect_time

    @property
    def messages_sent(self) -> int:
        return self._channel.messages_sent

    @property
    def dropped_messages(self) -> int:
        return self._outbound.dropped

    @property
    def url(self) -> str:
        return self._url

    @url.setter
    def url(self, value: str) -> None:
        if self._link.running:
            raise RuntimeError("the URL can change only while disconnected")
        self._url = normalize_url(value, self._options.mode)

    @property
    def queue_size(self) -> int:
        return len(self._outbound)

    @property
    def rooms(self) -> frozenset[str]:
        return frozenset(self._rooms.joined)

    def get_options(self) -> dict[str, Any]:
        data = attrs.asdict(self._options)
        data["hooks"] = sorted(self._options.hooks)
        return data

    def update_options(self, **options: Any) -> None:
        """Change options now, all or nothing; a bad value raises ``ConfigError``."""
        self._options = ClientOptions.build(options, base=self._options)

    # ================================================================== lifecycle

    async def connect(self) -> None:
        """Connect and wait for the server's welcome. With ``reconnection`` a failed first attempt
        is retried like a lost connection; ``NotConnected`` once attempts are exhausted."""
        await self._link.connect()

    async def disconnect(self) -> None:
        """Close and release everything: the link, timers, tasks; requests fail with
        ``NotConnected``; the offline queue is dropped; the client can ``connect()`` again."""
        await self._link.close()
        self._outbound.clear("client disconnected")
        self._rooms.fail_waiting("client disconnected")
        for task in tuple(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._link.set_state(ClientState.DISCONNECTED)

    async def __aenter__(self) -> StelarClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    # What the link keeper tells us (LinkEvents).

    def _link_opened(self) -> None:
        welcome = self._welcome
        # A resumed session is back in its rooms without history; the others are joined again
        # (those with history from the last position seen).
        self._rooms.rejoin(
            skip=frozenset(welcome.rooms) if welcome is not None and welcome.resumed else frozenset()
        )
        self._channel.transmit()
        self._outbound.drain()

    def _link_closed(self, code: int, reason: str) -> None:
        lost = self._channel.session.connection_lost()
        self._outbound.fail(lost, f"connection lost before the answer ({code} {reason})")
        self._listeners.emit("disconnect", {"code": code, "reason": reason})

    # ================================================================== frames in

    def _frame_received(self, data: bytes) -> None:
        self.messages_received += 1
        session = self._channel.session
        session.receive_frame(data)
        for event in session.events_received():
            self._dispatch(event)
        self._channel.transmit()  # pongs

    def _dispatch(self, event: ClientEvent) -> None:
        if isinstance(event, EventReceived):
            self._hook("on_message", event=event.event, data=event.data, is_binary=event.binary)
            self._listeners.emit(event.event, event.data)
            self._listeners.emit_to_any(event.event, event.data)
        elif isinstance(event, ResponseReceived):
            self._outbound.answered(event)
        elif isinstance(event, Welcome):
            self._welcome = event
            if event.lost:
                self._outbound.fail(
                    list(event.lost), "connection lost before the answer, and the session expired"
                )
            self._link.welcomed(event)
        elif isinstance(event, RequestReceived):
            self._spawn(self._answer(event))
        elif isinstance(event, RoomAnswered):
            self._rooms.answered(event)
        elif isinstance(event, PresenceChanged):
            change = {"room": event.room, "count": event.count, "joins": event.joins}
            change.update(leaves=list(event.leaves), updates=event.updates, snapshot=event.snapshot)
            self._listeners.emit("presence", change)
        elif isinstance(event, MessagesDropped):
            self._listeners.emit(
                "messages_lost", {"room": event.room, "count": event.count, "policy": event.policy}
            )
        elif isinstance(event, ErrorReceived):
            self._record_error(RemoteError(event.code, event.message), "server")
        elif isinstance(event, InvalidFrame):
            self._record_error(event.error, "receive")
        # Pings are answered by the session; pongs and the server's goodbye need nothing here
        # (the link reports the end of the connection).

    async def _answer(self, request: RequestReceived) -> None:
        await answer_request(self._channel.session, self._ack_handlers, request)
        self._channel.transmit()

    # ================================================================== sending

    def emit(self, event: str, data: Any = None) -> bool:
        """Send an event, or queue it while offline. False when ``on_before_emit`` cancelled it."""
        return self._send(FrameType.JSON, event, data, dump_json)

    def emit_binary(self, event: str, data: bytes) -> bool:
        return self._send(FrameType.BINARY, event, data, bytes)

    def _send(self, kind: FrameType, event: str, data: Any, encode: Callable[[Any], bytes]) -> bool:
        if self._hook("on_before_emit", event=event, data=data) is False:
            return False
        payload = encode(data)
        self._outbound.check_payload(payload)
        self._outbound.send(Queued(kind, event, payload, trace=self._outbound.trace_context()))
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
        self._outbound.check_payload(payload)
        return await self._outbound.request(event, payload, timeout)

    # ================================================================== rooms

    async def join_room(self, room: str) -> RoomJoin:
        """Join ``room``; the answer is true if the server accepted, and carries the room's
        position when it keeps history. Offline, the join is sent (and answered) when the
        connection is back. Joined rooms are joined again after every reconnection, from the last
        position seen: the server replays what was missed (the ``recovered`` event) or says why
        it could not (``not_recovered``, with the reason: reload the state)."""
        return await self._rooms.join(room)

    def presence(self, room: str) -> dict[str, Any]:
        """The members of presence room ``room`` by presence key, with their state, as this
        client knows them now (kept current by the server's diffs: the ``presence`` event)."""
        return dict(self._channel.session.presence.get(room, {}))

    def presence_count(self, room: str) -> int:
        """How many members presence room ``room`` has (also past its list limit)."""
        return self._channel.session.presence_counts.get(room, 0)

    def update_presence(self, room: str, state: Any) -> None:
        """Set this client's state in presence room ``room`` (others see it in the next diff).
        ``NotConnected`` while offline: presence is about now."""
        if not self.connected:
            raise NotConnected("presence state is sent only while connected")
        self._channel.session.update_presence(room, state)
        self._channel.transmit()

    @property
    def lost_messages(self) -> dict[str, int]:
        """Messages a room's lossy send queue (``drop_oldest``, ``conflate``) dropped for this
        client, by room (each loss is also told by the ``messages_lost`` event)."""
        return dict(self._channel.session.lost)

    @property
    def positions(self) -> dict[str, Position]:
        """The last position seen in each joined room that keeps history."""
        return dict(self._channel.session.positions)

    async def leave_room(self, room: str) -> bool:
        return await self._rooms.leave(room)

    async def history(
        self, room: str, *, since: int | None = None, limit: int = 100, timeout: float | None = None
    ) -> RoomHistory:
        """A page of the history of ``room`` (a room with history this client is in): the
        publications after offset ``since`` (from the oldest kept when None), at most ``limit``
        (the server caps it at its ``max_recovery_replay``), and the room's position now.
        ``AckError`` with ``not_in_room``, ``no_history`` or ``invalid_frame`` otherwise."""
        request: dict[str, Any] = {"room": room, "limit": limit}
        if since is not None:
            request["since"] = since
        return RoomHistory.of(await self._request(HISTORY_REQUEST, request, timeout))

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
