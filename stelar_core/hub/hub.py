"""The hub: everything between "a frame arrived" and "these connections get these bytes"."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stelar_core.config import ServerConfig
from stelar_core.errors import ConnectionRefused, NotConnected, ProtocolError
from stelar_core.hub.context import ClientInfo, Context
from stelar_core.hub.middleware import Middleware, run_middleware
from stelar_core.hub.ratelimit import RateLimitPolicy
from stelar_core.hub.rooms import RoomTable
from stelar_core.hub.session import Session, SessionState
from stelar_core.hub.stats import Counters, LatencyHistogram, Stats, memory_usage
from stelar_core.plugins.manager import StelarPluginManager
from stelar_core.protocol import (
    PROTOCOL_VERSION,
    DisconnectCode,
    ErrorCode,
    Frame,
    FrameType,
    decode_frame,
    dump_json,
    encode_frame,
)
from stelar_core.providers import Broker, Delivery, IPTracker, resolve
from stelar_core.transports.base import Connection, HttpRoute

if TYPE_CHECKING:
    from stelar_core.server import StelarServer

log = logging.getLogger("stelar.hub")

Handler = Callable[[Context], Any]
_PING = encode_frame(FrameType.PING)
_NO_ONE: frozenset[str] = frozenset()


def _exclusion(exclude: str | Iterable[str] | None) -> frozenset[str]:
    if exclude is None:
        return _NO_ONE
    if isinstance(exclude, str):
        return frozenset((exclude,))
    return frozenset(exclude)


def encode_event(event: str, data: Any) -> bytes:
    if not event or not isinstance(event, str):
        raise ValueError(f"event name must be a non-empty string, got {event!r}")
    return encode_frame(FrameType.JSON, event, dump_json(data))


def encode_binary(event: str, data: bytes) -> bytes:
    if not event or not isinstance(event, str):
        raise ValueError(f"event name must be a non-empty string, got {event!r}")
    return encode_frame(FrameType.BINARY, event, bytes(data))


class _Admission:
    """A place reserved by ``admit``; ``release`` is idempotent."""

    __slots__ = ("_hub", "_released", "ip")

    def __init__(self, hub: Hub, ip: str) -> None:
        self._hub = hub
        self.ip = ip
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._hub.release_admission(self.ip)


class Hub:
    """Sessions, rooms, handlers and delivery of one server. Transports reach it through the
    methods of :class:`~stelar_core.transports.base.HubPort`; the facade through the rest."""

    def __init__(
        self,
        server: StelarServer,
        config: ServerConfig,
        pm: StelarPluginManager,
        *,
        limits: RateLimitPolicy,
        ip_tracker: IPTracker,
        id_generator: Callable[[], str],
        broker: Broker,
        http_routes: Mapping[str, HttpRoute],
    ) -> None:
        self.server = server
        self._config = config
        self.pm = pm
        self.limits = limits
        self.ip_tracker = ip_tracker
        self.id_generator = id_generator
        self.broker = broker
        self._http_routes = http_routes
        self.handlers: dict[str, list[Handler]] = {}
        self.any_handlers: list[Handler] = []
        self.ack_handlers: dict[str, Handler] = {}
        self.connection_handlers: list[Handler] = []
        self.disconnect_handlers: list[Handler] = []
        self.middleware: list[Middleware] = []
        self.counters = Counters()
        self.ack_latency = LatencyHistogram()
        self._sessions: set[Session] = set()
        self._open: dict[str, Session] = {}
        self._by_transport: Counter[str] = Counter()
        self._rooms = RoomTable()
        self._admitted = 0
        self._accepting = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._started_at = time.monotonic()
        self._frame_handlers: dict[FrameType, Callable[[Session, Frame], Awaitable[None] | None]] = {
            FrameType.JSON: self._on_event,
            FrameType.BINARY: self._on_event,
            FrameType.ACK_REQUEST: self._on_ack_request,
            FrameType.ACK_RESPONSE: self._on_ack_response,
            FrameType.PING: self._on_ping,
            FrameType.PONG: self._on_pong,
            FrameType.CONNECT: self._on_connect_again,
            FrameType.DISCONNECT: self._on_disconnect,
            FrameType.JOIN: self._on_join,
            FrameType.LEAVE: self._on_leave,
            FrameType.ERROR: self._on_error,
        }

    # ================================================================== HubPort

    @property
    def config(self) -> ServerConfig:
        return self._config

    @config.setter
    def config(self, config: ServerConfig) -> None:
        self._config = config

    @property
    def http_routes(self) -> Mapping[str, HttpRoute]:
        return self._http_routes

    def count(self, counter: str, amount: int = 1) -> None:
        self.counters.other[counter] += amount

    async def admit(self, remote_address: str, protocol: str) -> _Admission:
        config = self._config
        if not self._accepting:
            self.counters.refused[ErrorCode.SERVER_SHUTDOWN] += 1
            raise ConnectionRefused(
                ErrorCode.SERVER_SHUTDOWN, "server is not accepting connections", DisconnectCode.GOING_AWAY
            )
        if self._admitted >= config.max_connections:
            raise self._limit_reached(
                ErrorCode.SERVER_FULL,
                f"server is full ({config.max_connections} connections)",
                self._admitted,
                config.max_connections,
                remote_address,
                "global",
            )
        # Reserve before any await so concurrent admissions cannot overshoot the limit.
        self._admitted += 1
        try:
            limit = config.max_connections_per_ip
            if not await resolve(self.ip_tracker.check(remote_address, limit)):
                raise self._limit_reached(
                    ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP,
                    f"too many connections from {remote_address} (at most {limit})",
                    await resolve(self.ip_tracker.count(remote_address)),
                    limit,
                    remote_address,
                    "ip",
                )
            await resolve(self.ip_tracker.add(remote_address))
        except BaseException:
            self._admitted -= 1
            raise
        return _Admission(self, remote_address)

    def _limit_reached(
        self, code: str, reason: str, active: int, limit: int, ip: str, scope: str
    ) -> ConnectionRefused:
        self.counters.refused[code] += 1
        log.warning("refused connection from %s: %s", ip, reason)
        self._notify(
            "stelar_on_max_connections_reached",
            active_connections=active,
            max_connections=limit,
            ip=ip,
            scope=scope,
        )
        return ConnectionRefused(code, reason, DisconnectCode.TRY_AGAIN_LATER)

    def release_admission(self, ip: str) -> None:
        self._admitted -= 1
        removed = self.ip_tracker.remove(ip)
        if inspect.isawaitable(removed):
            self.spawn(removed)

    def open_session(self, connection: Connection, admission: Any) -> Session:
        session = Session(self, self.id_generator(), connection, admission)
        self._sessions.add(session)
        session.start_connect_timer(self._config.connect_timeout)
        return session

    def connect_timed_out(self, session: Session) -> None:
        if session.state is SessionState.HANDSHAKE:
            self._refuse_connect(
                session,
                ErrorCode.CONNECT_TIMEOUT,
                f"no connect frame within {self._config.connect_timeout}s",
                DisconnectCode.POLICY_VIOLATION,
            )

    def session_closed(self, session: Session, code: int, reason: str) -> None:
        """The connection is gone (either side closed): forget the session everywhere."""
        if session.state is SessionState.CLOSED:
            return
        was_open = session.is_open
        session.mark_closed()
        session.acks.fail_all(f"client {session.id} disconnected")
        self._sessions.discard(session)
        session.admission.release()
        if not was_open:
            return
        del self._open[session.id]
        self._by_transport[session.protocol] -= 1
        log.info("client %s disconnected: %s %s", session.id, code, reason)
        rooms = frozenset(session.rooms)
        self._rooms.remove_everywhere(session)
        for pending in self.limits.forget(session.id):
            self.spawn(pending)
        self._notify(
            "stelar_on_client_disconnect",
            client_id=session.id,
            ip=session.remote_address,
            protocol=session.protocol,
            rooms=rooms,
            code=code,
            reason=reason,
        )
        if self.disconnect_handlers:
            ctx = Context(self, session, "disconnect", {"code": code, "reason": reason})
            pending_handlers = self._call_handlers(self.disconnect_handlers, ctx)
            if pending_handlers is not None:
                self.spawn(pending_handlers)

    def stream_failed(self, session: Session, code: str, reason: str, close_code: int) -> None:
        self._invalid(session, code, reason)
        self.close_session(session, close_code, reason)

    def slow_consumer(self, session: Session, buffered_bytes: int) -> None:
        if session.state is SessionState.CLOSED:
            return
        self.counters.other["slow_consumers"] += 1
        self._notify(
            "stelar_on_slow_consumer",
            client_id=session.id,
            protocol=session.protocol,
            buffered_bytes=buffered_bytes,
        )
        self.close_session(session, DisconnectCode.POLICY_VIOLATION, "slow consumer")

    # ================================================================== frames in

    def handle_frame(self, session: Session, data: bytes) -> Awaitable[None] | None:
        """Handle one frame of ``session``; returns an awaitable when handling must continue
        asynchronously (the session keeps later frames until it is done)."""
        counters = self.counters
        counters.messages_received += 1
        counters.bytes_received += len(data)
        try:
            frame = decode_frame(data)
        except ProtocolError as exc:
            self._invalid(session, exc.code, exc.reason)
            return None
        if session.state is SessionState.HANDSHAKE:
            if frame.type is FrameType.CONNECT:
                return self._handshake(session, frame)
            self._invalid(
                session,
                ErrorCode.NOT_CONNECTED,
                f"expected a connect frame first, got {frame.type.name}",
            )
            self.close_session(session, DisconnectCode.POLICY_VIOLATION, "expected a connect frame")
            return None
        return self._frame_handlers[frame.type](session, frame)

    # ------------------------------------------------------------------ handshake

    def _handshake(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        try:
            payload = frame.json()
        except ProtocolError as exc:
            self._refuse_connect(session, exc.code, exc.reason, DisconnectCode.PROTOCOL_ERROR)
            return None
        auth = payload.get("auth") if isinstance(payload, dict) else payload
        if not isinstance(auth, dict | None):
            self._refuse_connect(
                session,
                ErrorCode.INVALID_FRAME,
                'connect payload must be {"auth": {...}}',
                DisconnectCode.PROTOCOL_ERROR,
            )
            return None
        session.auth = auth or {}
        if self.middleware:
            return self._handshake_through_middleware(session)
        return self._accept(session)

    async def _handshake_through_middleware(self, session: Session) -> None:
        try:
            await run_middleware(tuple(self.middleware), Context(self, session, "connect", session.auth))
        except ConnectionRefused as refusal:
            self._refuse_connect(session, refusal.code, refusal.reason, refusal.close_code)
            return
        if session.state is SessionState.HANDSHAKE:
            pending = self._accept(session)
            if pending is not None:
                await pending

    def _accept(self, session: Session) -> Awaitable[None] | None:
        config = self._config
        session.mark_open()
        self._open[session.id] = session
        self._by_transport[session.protocol] += 1
        self.counters.total_connections += 1
        welcome = {
            "id": session.id,
            "v": PROTOCOL_VERSION,
            "heartbeat": config.heartbeat_interval,
            "max_payload": config.max_payload_size,
        }
        self._send(session, encode_frame(FrameType.CONNECT, "", dump_json(welcome)))
        log.info("client %s connected over %s from %s", session.id, session.protocol, session.remote_address)
        self._notify(
            "stelar_on_client_connect",
            client_id=session.id,
            ip=session.remote_address,
            protocol=session.protocol,
            metadata=session.metadata,
        )
        if self.connection_handlers:
            return self._call_handlers(self.connection_handlers, Context(self, session))
        return None

    def _refuse_connect(self, session: Session, code: str, reason: str, close_code: int) -> None:
        self.counters.refused[code] += 1
        log.info("refused connection from %s: %s (%s)", session.remote_address, code, reason)
        self._send_error(session, code, reason)
        self.close_session(session, close_code, reason)

    # ------------------------------------------------------------------ messages

    def _check_message(self, session: Session, frame: Frame) -> bool:
        """Event name and payload size; False (and the sender told) when the message is refused."""
        event = frame.event
        if not event or len(event) > self._config.max_event_name_length:
            reason = (
                "event name is empty"
                if not event
                else (f"event name is {len(event)} characters, at most {self._config.max_event_name_length}")
            )
            self._invalid(session, ErrorCode.INVALID_EVENT, reason, frame)
            return False
        size, limit = len(frame.payload), self._config.max_payload_size
        if size > limit:
            self.counters.payload_too_large += 1
            self._notify(
                "stelar_on_payload_too_large",
                client_id=session.id,
                event=event,
                size=size,
                max_size=limit,
            )
            self._refuse_message(
                session,
                frame,
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"payload is {size} bytes, at most {limit}",
            )
            return False
        return True

    def _rate_checked(
        self,
        session: Session,
        frame: Frame,
        event: str,
        then: Callable[[Session, Frame], Awaitable[None] | None],
    ) -> Awaitable[None] | None:
        allowed = self.limits.check(session.id, event)
        if allowed is True:
            return then(session, frame)
        if allowed is False:
            self._rate_limited(session, frame)
            return None
        return self._rate_checked_async(allowed, session, frame, then)

    async def _rate_checked_async(
        self,
        allowed: Awaitable[bool],
        session: Session,
        frame: Frame,
        then: Callable[[Session, Frame], Awaitable[None] | None],
    ) -> None:
        try:
            ok = await allowed
        except Exception:
            log.exception("rate limiter failed; letting the message of %s through", session.id)
            ok = True
        if not ok:
            self._rate_limited(session, frame)
            return
        pending = then(session, frame)
        if pending is not None:
            await pending

    def _rate_limited(self, session: Session, frame: Frame) -> None:
        self.counters.rate_limited += 1
        keep = self._ask(
            "stelar_on_rate_limit_exceeded",
            client_id=session.id,
            event=frame.event,
            protocol=session.protocol,
        )
        self._refuse_message(session, frame, ErrorCode.RATE_LIMITED, "rate limit exceeded")
        if keep is not False:
            self.close_session(session, DisconnectCode.POLICY_VIOLATION, "rate limit exceeded")

    def _on_event(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        if not self._check_message(session, frame):
            return None
        return self._rate_checked(session, frame, frame.event, self._dispatch_event)

    def _dispatch_event(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        handlers = self.handlers.get(frame.event)
        if not handlers and not self.any_handlers:
            log.debug("no handler for event %r from %s", frame.event, session.id)
            return None
        if frame.type is FrameType.JSON:
            try:
                data = frame.json()
            except ProtocolError as exc:
                self._invalid(session, exc.code, exc.reason, frame)
                return None
        else:
            data = frame.payload
        ctx = Context(self, session, frame.event, data)
        if handlers and self.any_handlers:
            return self._call_handlers([*handlers, *self.any_handlers], ctx)
        return self._call_handlers(handlers or self.any_handlers, ctx)

    def _call_handlers(self, handlers: list[Handler], ctx: Context) -> Awaitable[None] | None:
        for index, handler in enumerate(handlers):
            try:
                result = handler(ctx)
            except Exception:
                self._handler_failed(handler, ctx)
                continue
            if inspect.isawaitable(result):
                return self._finish_handlers(result, handlers[index + 1 :], ctx)
        return None

    async def _finish_handlers(self, first: Awaitable[Any], rest: list[Handler], ctx: Context) -> None:
        try:
            await first
        except Exception:
            self._handler_failed(first, ctx)
        for handler in rest:
            try:
                result = handler(ctx)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._handler_failed(handler, ctx)

    def _handler_failed(self, handler: object, ctx: Context) -> None:
        """Called inside ``except``: log, count and report the exception being handled."""
        self.counters.handler_errors += 1
        name = getattr(handler, "__qualname__", repr(handler))
        log.exception("handler %s failed on event %r of client %s", name, ctx.event, ctx.id)
        error = sys.exc_info()[1]
        if error is not None:
            self._notify("stelar_on_handler_error", client_id=ctx.id, event=ctx.event, error=error)

    # ------------------------------------------------------------------ ACKs

    def _on_ack_request(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        if not self._check_message(session, frame):
            return None
        return self._rate_checked(session, frame, frame.event, self._answer_request)

    def _answer_request(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        handler = self.ack_handlers.get(frame.event)
        if handler is None:
            self._refuse_message(
                session, frame, ErrorCode.NO_HANDLER, f"no handler for request {frame.event!r}"
            )
            return None
        try:
            data = frame.json()
        except ProtocolError as exc:
            self._invalid(session, exc.code, exc.reason, frame)
            return None
        ctx = Context(self, session, frame.event, data)
        started = time.perf_counter()
        try:
            result = handler(ctx)
        except Exception as exc:
            self._handler_failed(handler, ctx)
            self._reply_error(session, frame, ErrorCode.HANDLER_ERROR, str(exc))
            return None
        if inspect.isawaitable(result):
            return self._answer_request_async(result, session, frame, handler, ctx, started)
        self._reply(session, frame, result)
        self.ack_latency.observe(time.perf_counter() - started)
        return None

    async def _answer_request_async(
        self,
        result: Awaitable[Any],
        session: Session,
        frame: Frame,
        handler: Handler,
        ctx: Context,
        started: float,
    ) -> None:
        try:
            value = await result
        except Exception as exc:
            self._handler_failed(handler, ctx)
            self._reply_error(session, frame, ErrorCode.HANDLER_ERROR, str(exc))
            return
        self._reply(session, frame, value)
        self.ack_latency.observe(time.perf_counter() - started)

    def _reply(self, session: Session, request: Frame, value: Any) -> None:
        try:
            payload = dump_json({"ok": value})
        except (TypeError, ValueError) as exc:
            self.counters.handler_errors += 1
            log.error("reply to request %r is not JSON-serializable: %s", request.event, exc)
            self._reply_error(session, request, ErrorCode.HANDLER_ERROR, "reply is not JSON-serializable")
            return
        self._send(session, encode_frame(FrameType.ACK_RESPONSE, request.event, payload, request.ack_id))

    def _reply_error(self, session: Session, request: Frame, code: str, message: str) -> None:
        payload = dump_json({"error": {"code": code, "message": message}})
        self._send(session, encode_frame(FrameType.ACK_RESPONSE, request.event, payload, request.ack_id))

    def _on_ack_response(self, session: Session, frame: Frame) -> None:
        assert frame.ack_id is not None  # decode_frame guarantees it for this type
        try:
            answer = frame.json()
        except ProtocolError as exc:
            self._invalid(session, exc.code, exc.reason)
            answer = {"error": {"code": exc.code, "message": exc.reason}}
        if not session.acks.resolve(frame.ack_id, answer):
            self._invalid(session, ErrorCode.UNKNOWN_ACK, f"no request is waiting for ack id {frame.ack_id}")

    async def request(self, session: Session, event: str, data: Any, *, timeout: float | None) -> Any:
        if not session.is_open:
            raise NotConnected(f"client {session.id} is not connected")
        payload = dump_json(data)
        ack_id, future = session.acks.open()
        self._send(session, encode_frame(FrameType.ACK_REQUEST, event, payload, ack_id))
        return await session.acks.wait(ack_id, future, timeout or self._config.ack_timeout, event)

    # ------------------------------------------------------------------ control frames

    def _on_ping(self, session: Session, frame: Frame) -> None:
        self._send(session, encode_frame(FrameType.PONG, "", frame.payload))

    def _on_pong(self, session: Session, frame: Frame) -> None:
        """``last_seen`` was updated on arrival; nothing else to do."""

    def _on_connect_again(self, session: Session, frame: Frame) -> None:
        self._invalid(session, ErrorCode.INVALID_FRAME, "already connected")

    def _on_disconnect(self, session: Session, frame: Frame) -> None:
        session.connection.close(DisconnectCode.NORMAL, "client disconnected")
        self.session_closed(session, DisconnectCode.NORMAL, "client disconnected")

    def _on_error(self, session: Session, frame: Frame) -> None:
        log.info("client %s reported error %r: %r", session.id, frame.event, frame.payload[:200])

    def _on_join(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        return self._rate_checked(session, frame, "", self._join_requested)

    def _on_leave(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        return self._rate_checked(session, frame, "", self._leave_requested)

    def _join_requested(self, session: Session, frame: Frame) -> None:
        self._answer_room(session, frame, self.join_room(session, frame.event))

    def _leave_requested(self, session: Session, frame: Frame) -> None:
        self._answer_room(session, frame, self.leave_room(session, frame.event))

    def _answer_room(self, session: Session, frame: Frame, refusal: tuple[str, str] | None) -> None:
        if refusal is None:
            answer: dict[str, Any] = {"ok": True}
        else:
            answer = {"error": {"code": refusal[0], "message": refusal[1]}}
        self._send(session, encode_frame(frame.type, frame.event, dump_json(answer)))

    # ================================================================== rooms

    def join_room(self, session: Session, room: str) -> tuple[str, str] | None:
        """Put ``session`` in ``room``; returns ``(code, message)`` when refused."""
        config = self._config
        if not session.is_open:
            return ErrorCode.NOT_CONNECTED, "client is not connected"
        if room in session.rooms:
            return None
        if not room or len(room) > config.max_event_name_length:
            return (
                ErrorCode.INVALID_EVENT,
                f"room name must be 1..{config.max_event_name_length} characters",
            )
        if self._room_vetoed("stelar_on_client_join_room", session, room):
            return ErrorCode.JOIN_REJECTED, f"joining room {room!r} was rejected"
        if len(session.rooms) >= config.max_rooms_per_client:
            self._notify(
                "stelar_on_max_rooms_per_client_reached",
                client_id=session.id,
                room=room,
                current_rooms=len(session.rooms),
                max_rooms=config.max_rooms_per_client,
            )
            return (
                ErrorCode.MAX_ROOMS_PER_CLIENT,
                f"a client may be in at most {config.max_rooms_per_client} rooms",
            )
        if room not in self._rooms and len(self._rooms) >= config.max_rooms:
            self._notify(
                "stelar_on_max_rooms_reached",
                client_id=session.id,
                room=room,
                total_rooms=len(self._rooms),
                max_rooms=config.max_rooms,
            )
            return ErrorCode.MAX_ROOMS, f"the server holds at most {config.max_rooms} rooms"
        self._rooms.add(room, session)
        return None

    def leave_room(self, session: Session, room: str) -> tuple[str, str] | None:
        if room not in session.rooms:
            return ErrorCode.NOT_IN_ROOM, f"not in room {room!r}"
        if self._room_vetoed("stelar_on_client_leave_room", session, room):
            return ErrorCode.LEAVE_REJECTED, f"leaving room {room!r} was rejected"
        self._rooms.remove(room, session)
        return None

    def _room_vetoed(self, hook: str, session: Session, room: str) -> bool:
        return self._ask(hook, client_id=session.id, room=room, metadata=session.metadata) is False

    def get_room_members(self, room: str) -> list[str]:
        return self._rooms.member_ids(room)

    def get_rooms(self) -> list[str]:
        return self._rooms.names()

    # ================================================================== sending

    def _send(self, session: Session, frame: bytes) -> None:
        if session.state is not SessionState.CLOSED:
            self.counters.messages_sent += 1
            self.counters.bytes_sent += len(frame)
            session.connection.send(frame)

    def _send_error(self, session: Session, code: str, message: str, event: str = "") -> None:
        body: dict[str, Any] = {"message": message}
        if event:
            body["event"] = event
        self._send(session, encode_frame(FrameType.ERROR, code, dump_json(body)))

    def _refuse_message(self, session: Session, frame: Frame, code: str, message: str) -> None:
        """Tell the sender its message was refused in the answer it waits for: an ACK error for a
        request, a room answer for a join or leave, else an error frame."""
        if frame.type is FrameType.ACK_REQUEST:
            self._reply_error(session, frame, code, message)
        elif frame.type is FrameType.JOIN or frame.type is FrameType.LEAVE:
            self._answer_room(session, frame, (code, message))
        else:
            self._send_error(session, code, message, frame.event)

    def _invalid(self, session: Session, code: str, reason: str, frame: Frame | None = None) -> None:
        self.counters.invalid_messages += 1
        self._notify(
            "stelar_on_invalid_message",
            client_id=session.id,
            code=code,
            reason=reason,
            protocol=session.protocol,
        )
        if frame is not None:
            self._refuse_message(session, frame, code, reason)
        else:
            self._send_error(session, code, reason)

    def send_event(self, session: Session, event: str, data: Any) -> None:
        self._send(session, encode_event(event, data))

    def send_binary(self, session: Session, event: str, data: bytes) -> None:
        self._send(session, encode_binary(event, data))

    def broadcast(self, event: str, data: Any, *, exclude: str | Iterable[str] | None = None) -> None:
        self._fan_out(encode_event, event, data, None, exclude)

    def broadcast_binary(
        self, event: str, data: bytes, *, exclude: str | Iterable[str] | None = None
    ) -> None:
        self._fan_out(encode_binary, event, data, None, exclude)

    def to_room(
        self, room: str, event: str, data: Any, *, exclude: str | Iterable[str] | None = None
    ) -> None:
        self._fan_out(encode_event, event, data, room, exclude)

    def to_room_binary(
        self, room: str, event: str, data: bytes, *, exclude: str | Iterable[str] | None = None
    ) -> None:
        self._fan_out(encode_binary, event, data, room, exclude)

    def _fan_out(
        self,
        encode: Callable[[str, Any], bytes],
        event: str,
        data: Any,
        room: str | None,
        exclude: str | Iterable[str] | None,
    ) -> None:
        """Ask ``on_before_broadcast``, encode once, publish to everyone or to ``room``."""
        excluded = _exclusion(exclude)
        if self.pm.implements("stelar_on_before_broadcast") and (
            self._ask("stelar_on_before_broadcast", event=event, data=data, exclude=excluded, room=room)
            is False
        ):
            return
        self.broker.publish(Delivery(encode(event, data), room=room, exclude=excluded))

    def to_id(self, client_id: str, event: str, data: Any) -> None:
        self.broker.publish(Delivery(encode_event(event, data), client_id=client_id))

    def to_id_binary(self, client_id: str, event: str, data: bytes) -> None:
        self.broker.publish(Delivery(encode_binary(event, data), client_id=client_id))

    def deliver(self, delivery: Delivery) -> None:
        """The broker's callback: write one encoded frame to every local recipient."""
        frame = delivery.frame
        exclude = delivery.exclude
        if delivery.client_id is not None:
            session = self._open.get(delivery.client_id)
            recipients: tuple[Session, ...] = () if session is None else (session,)
        elif delivery.room is None:
            recipients = tuple(self._open.values())
        else:
            recipients = tuple(self._rooms.members(delivery.room))
        sent = 0
        for session in recipients:
            if session.id not in exclude and session.state is SessionState.OPEN:
                session.connection.send(frame)
                sent += 1
        self.counters.messages_sent += sent
        self.counters.bytes_sent += sent * len(frame)

    # ================================================================== information

    def session(self, client_id: str) -> Session | None:
        return self._open.get(client_id)

    def client_info(self, session: Session) -> ClientInfo:
        return ClientInfo(
            session.id,
            session.protocol,
            session.remote_address,
            frozenset(session.rooms),
            dict(session.metadata),
        )

    def get_clients(self, room: str | None = None) -> list[ClientInfo]:
        sessions = self._open.values() if room is None else self._rooms.members(room)
        return [self.client_info(session) for session in sessions]

    def stats(self) -> Stats:
        counters = self.counters
        uptime = time.monotonic() - self._started_at
        memory = memory_usage()
        pending = sum(len(session.acks) for session in self._open.values())
        return Stats(
            total_connections=counters.total_connections,
            active_connections=len(self._open),
            total_messages_received=counters.messages_received,
            total_messages_sent=counters.messages_sent,
            total_bytes_received=counters.bytes_received,
            total_bytes_sent=counters.bytes_sent,
            total_rooms=len(self._rooms),
            uptime_ms=int(uptime * 1000),
            uptime_seconds=round(uptime, 3),
            connections_by_transport={name: n for name, n in self._by_transport.items() if n},
            memory_mb=round(memory["rss"] / (1024 * 1024), 2),
            memory_usage=memory,
            rate_limiter_entries=self.limits.size(),
            invalid_messages=counters.invalid_messages,
            rate_limited=counters.rate_limited,
            payload_too_large=counters.payload_too_large,
            handler_errors=counters.handler_errors,
            pending_acks=pending,
            refused_connections=dict(counters.refused),
            counters=dict(counters.other),
            ack_latency=self.ack_latency.snapshot(),
        )

    # ================================================================== hooks

    def _notify(self, hook: str, **kwargs: Any) -> None:
        if self.pm.implements(hook):
            try:
                getattr(self.pm.hook, hook)(server=self.server, **kwargs)
            except Exception:
                log.exception("hook %s raised", hook)

    def _ask(self, hook: str, **kwargs: Any) -> Any:
        """A firstresult hook; a raising implementation counts as no answer (default action)."""
        if not self.pm.implements(hook):
            return None
        try:
            return getattr(self.pm.hook, hook)(server=self.server, **kwargs)
        except Exception:
            log.exception("hook %s raised; taking the default action", hook)
            return None

    # ================================================================== lifecycle

    def spawn(self, awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``awaitable`` in a task the hub tracks (``stop`` waits for, then cancels, them)."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def start(self) -> None:
        await self.broker.start(self.deliver)
        self._started_at = time.monotonic()
        self._accepting = True
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="stelar-heartbeat")

    def restart_heartbeat(self) -> None:
        """Apply a new ``heartbeat_interval`` now rather than after the sweep already waiting."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="stelar-heartbeat")

    def stop_accepting(self) -> None:
        self._accepting = False

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def stop(self, timeout: float) -> None:
        """Graceful end, bounded by ``timeout`` seconds: new connections are refused, work in
        flight (handlers, the ACKs they answer) finishes while connections are still open, then
        every session gets a going-away close (1001); what still runs is cancelled."""
        self._accepting = False
        if self._tasks:
            _, still_running = await asyncio.wait(tuple(self._tasks), timeout=timeout)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running)
        for session in tuple(self._sessions):
            self.close_session(session, DisconnectCode.GOING_AWAY, "server shutting down")
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
            self._heartbeat_task = None
        await self.broker.stop()

    def close_session(self, session: Session, code: int, reason: str) -> None:
        """Close from our side: a disconnect frame with code and reason, then the connection."""
        if session.state is SessionState.CLOSED:
            return
        self._send(
            session,
            encode_frame(FrameType.DISCONNECT, "", dump_json({"code": code, "reason": reason})),
        )
        session.connection.close(code, reason)
        self.session_closed(session, code, reason)

    async def _heartbeat(self) -> None:
        """Ping every open session each interval; close those silent past the timeout."""
        while True:
            await asyncio.sleep(self._config.heartbeat_interval)
            deadline = time.monotonic() - self._config.heartbeat_timeout
            for session in tuple(self._open.values()):
                if session.last_seen < deadline:
                    self._send_error(
                        session, ErrorCode.HEARTBEAT_TIMEOUT, "no traffic within heartbeat_timeout"
                    )
                    self.close_session(session, DisconnectCode.SERVER_ERROR, "heartbeat timeout")
                else:
                    self._send(session, _PING)
            try:
                await self.limits.cleanup()
            except Exception:
                log.exception("rate limiter cleanup failed")
