"""The hub: the coordinator between "a frame arrived" and "these connections get these bytes".

It owns the sessions' life and routes each frame type to the part that handles it; the parts,
one job each, share a ``HubServices`` record (``services.py``) and are listed in
docs/architecture.md.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from stelar_core import tracing
from stelar_core.clock import Clock
from stelar_core.config import ServerConfig
from stelar_core.errors import ConfigError, ProtocolError
from stelar_core.hub.admission import Admissions, AdmissionTicket
from stelar_core.hub.context import Context
from stelar_core.hub.control import ControlFrames
from stelar_core.hub.degradation import Degradation
from stelar_core.hub.directory import Directory
from stelar_core.hub.fanout import Fanout
from stelar_core.hub.gate import FrameHandler, MessageGate
from stelar_core.hub.handlers import HandlerRegistry, HandlerRunner
from stelar_core.hub.handshake import Handshake
from stelar_core.hub.heartbeat import Heartbeat
from stelar_core.hub.hooks import Hook, HookRunner
from stelar_core.hub.lossy import LossyQueues
from stelar_core.hub.node import BrokerNode
from stelar_core.hub.outbox import Outbox
from stelar_core.hub.presence import Presence
from stelar_core.hub.ratelimit import RateLimitPolicy
from stelar_core.hub.recovery import Recovery
from stelar_core.hub.requests import Requests
from stelar_core.hub.resumption import Resumption
from stelar_core.hub.rooms import Refusal, Rooms
from stelar_core.hub.services import HubServices
from stelar_core.hub.session import Session, SessionState
from stelar_core.hub.stats import Counters, snapshot
from stelar_core.hub.taps import Taps
from stelar_core.hub.tasks import Tasks
from stelar_core.logs import ServerLogging
from stelar_core.plugins.manager import StelarPluginManager
from stelar_core.protocol import (
    DisconnectCode,
    ErrorCode,
    Frame,
    FrameType,
    decode_frame,
    dump_json,
    encode_frame,
    load_json,
)
from stelar_core.protocol.publications import HISTORY_REQUEST
from stelar_core.providers import Broker, HistoryStore, IPTracker, PresenceStore, SessionStore
from stelar_core.tracing import Tracer
from stelar_core.transports.base import Connection, HttpRoute
from stelar_core.values import ClientInfo, Stats

if TYPE_CHECKING:
    from stelar_core.plugins.view import ServerView


# What a broker may offer beyond fan-out (each None when it does not).
BrokerStores = tuple[HistoryStore | None, SessionStore | None, PresenceStore | None]


class Hub:
    """Sessions and the routing of their frames for one server. Transports reach it through the
    methods of :class:`~stelar_core.transports.base.HubPort`; the facade through the rest."""

    def __init__(
        self,
        server: ServerView,
        config: ServerConfig,
        pm: StelarPluginManager,
        *,
        limits: RateLimitPolicy,
        handlers: HandlerRegistry,
        ip_tracker: IPTracker,
        id_generator: Callable[[], str],
        broker: Broker,
        http_routes: Mapping[str, HttpRoute],
        clock: Clock,
        logging_: ServerLogging,
        tracer: Tracer | None = None,
    ) -> None:
        self._config = config
        self._logging = logging_
        self.log = logging_.get("stelar.hub")
        self.limits = limits
        self.id_generator = id_generator
        self.clock = clock
        self._http_routes = http_routes
        self.counters = Counters()
        self.hooks = HookRunner(pm, server, self.counters.other)
        self.outbox = Outbox(self.counters, self.hooks, self._current_config, traced=tracer is not None)
        self.handlers = handlers
        self.tasks = Tasks(self.log)
        self.degradation = Degradation(self.hooks, self.log)
        self.taps = Taps(self.log)
        services = HubServices(
            config=self._current_config,
            counters=self.counters,
            hooks=self.hooks,
            outbox=self.outbox,
            handlers=self.handlers,
            runner=HandlerRunner(self.counters, self.hooks, self.log, self.outbox),
            context=functools.partial(Context, self),
            close=self.close_session,
            spawn=self.tasks.spawn,
            log=self.log,
            taps=self.taps,
            tracer=tracer,
        )
        self._runner = services.runner
        self.admissions = Admissions(services, ip_tracker)
        self.rooms = Rooms(self._current_config, self.hooks, self.taps)
        self.directory = Directory(self._current_config, self.rooms.table)
        self._open = self.directory.open
        self.recovery = Recovery(services, self._history_store, getattr(broker, "room_ready", None))
        self.lossy = LossyQueues(services, clock)
        self.presence = Presence(services, clock, self.rooms.table.members, self._presence_store)
        self.rooms.table.presence = self.presence
        self.fanout = Fanout(services, broker, self._open, self.rooms.table, self.recovery, self.lossy)
        self.requests = Requests(services, {HISTORY_REQUEST: self.recovery.history})
        self.gate = MessageGate(services, limits)
        self.resumption = Resumption(services, clock, self._session_store)
        self.handshake = Handshake(
            services,
            self.directory.opened,
            self.resumption,
            self._restorable,
            self.rooms.table,
            self._open.get,
        )
        self.heartbeat = Heartbeat(services, clock, self._open, limits, self.resumption.sweep)
        self._tracer = tracer
        self._found_stores: BrokerStores | None = None
        self._started_at = time.monotonic()
        # Events and requests pass the gate (name, size, rate limit) on their way to dispatch.
        on_event = functools.partial(self.gate.message, then=self._dispatch_event)
        self._frame_handlers: dict[FrameType, FrameHandler] = {
            FrameType.JSON: on_event,
            FrameType.BINARY: on_event,
            FrameType.ACK_REQUEST: functools.partial(self.gate.message, then=self.requests.answer),
            FrameType.ACK_RESPONSE: self.requests.response_received,
            **ControlFrames(
                services, self.gate, self.rooms, self.recovery, self.presence, self.session_closed
            ).handlers(),
        }

    def _current_config(self) -> ServerConfig:
        return self._config

    # The broker's stores are looked up once (a protocol check is slow) and kept in an
    # attribute, not a ``cached_property``: compiled, the class has no ``__dict__`` for one, and
    # it would look them up on every call. (Read inline: the history store is asked per send.)
    def _history_store(self) -> HistoryStore | None:
        return (self._found_stores or self._find_stores())[0]

    def _session_store(self) -> SessionStore | None:
        return (self._found_stores or self._find_stores())[1]

    def _presence_store(self) -> PresenceStore | None:
        return (self._found_stores or self._find_stores())[2]

    def _find_stores(self) -> BrokerStores:
        broker = self.fanout.broker
        history, sessions = getattr(broker, "history", None), getattr(broker, "sessions", None)
        presence = getattr(broker, "presence", None)
        self._found_stores = (
            history if isinstance(history, HistoryStore) else None,
            sessions if isinstance(sessions, SessionStore) else None,
            presence if isinstance(presence, PresenceStore) else None,
        )
        return self._found_stores

    def _restorable(self, rooms: frozenset[str]) -> list[str]:
        """The rooms a resumed session is put back in: those without history (it rejoins those
        with history from its positions, so that it misses nothing in between)."""
        policies = self._config.rooms
        restorable = []
        for room in sorted(rooms):
            policy = policies.for_room(room)
            if policy is None or not policy.keeps_history:
                restorable.append(room)
        return restorable

    def check_history(self, config: ServerConfig) -> None:
        """Rooms with history need a broker that keeps it: say so before serving."""
        if config.rooms.any_history and self._history_store() is None:
            raise ConfigError(
                f"option 'rooms' asks for history, but the broker {type(self.fanout.broker).__name__} "
                "keeps none (it has no 'history' store; the local, redis and nats brokers do)"
            )

    # ================================================================== HubPort

    @property
    def config(self) -> ServerConfig:
        return self._config

    def reconfigure(self, config: ServerConfig) -> None:
        """The configuration ``update_config`` built (the server has validated it and set its
        rate-limit policy): in force from the next frame; a new heartbeat interval restarts the
        sweeps at once."""
        self.check_history(config)
        interval_changed = config.heartbeat_interval != self._config.heartbeat_interval
        self._config = config
        if interval_changed:
            self.heartbeat.start()

    @property
    def http_routes(self) -> Mapping[str, HttpRoute]:
        return self._http_routes

    @property
    def broker(self) -> Broker:
        """The delivery seam this hub publishes through (``server.cluster`` reads it)."""
        return self.fanout.broker

    @property
    def ip_tracker(self) -> IPTracker:
        return self.admissions.ip_tracker

    def logger(self, name: str) -> logging.Logger:
        """This server's logger ``name`` (``stelar.ws``...): it follows the ``logger`` option."""
        return self._logging.get(name)

    @property
    def traces(self) -> bool:
        """Whether a tracer records what this hub processes (the welcome says so to clients)."""
        return self._tracer is not None

    def count(self, counter: str, amount: int = 1) -> None:
        self.counters.other[counter] += amount

    async def admit(self, remote_address: str, protocol: str) -> AdmissionTicket:
        admitted = self.admissions.admit(remote_address)
        return admitted if isinstance(admitted, AdmissionTicket) else await admitted

    def admit_nowait(
        self, remote_address: str, protocol: str
    ) -> AdmissionTicket | Awaitable[AdmissionTicket]:
        return self.admissions.admit(remote_address)

    def open_session(self, connection: Connection, admission: Any) -> Session:
        session = Session(self, self.id_generator(), connection, admission)
        self.directory.all.add(session)
        session.start_connect_timer(self._config.connect_timeout)
        return session

    def connect_timed_out(self, session: Session) -> None:
        if session.state is SessionState.HANDSHAKE:
            self.handshake.refuse(
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
        session.fail_pending_acks(f"client {session.id} disconnected")
        self.lossy.forget(session)
        session.admission.release()
        rooms = frozenset(session.rooms)
        self.directory.forget(session, was_open)
        if not was_open:
            return
        self.resumption.keep(session, rooms, code)
        self.log.info("client %s disconnected: %s %s", session.id, code, reason)
        for pending in self.limits.forget(session.id, keep_buckets=session.rate_key != session.id):
            self.tasks.spawn(pending)
        self.hooks.notify(
            Hook.CLIENT_DISCONNECT,
            client_id=session.id,
            ip=session.remote_address,
            protocol=session.protocol,
            rooms=rooms,
            code=code,
            reason=reason,
        )
        if self.taps.listeners:
            self.taps.emit("disconnect", client_id=session.id)
        if self.handlers.disconnect:
            ctx = Context(self, session, "disconnect", {"code": code, "reason": reason})
            pending_handlers = self._runner.run(self.handlers.disconnect, ctx)
            if pending_handlers is not None:
                self.tasks.spawn(pending_handlers)

    def stream_failed(self, session: Session, code: str, reason: str, close_code: int) -> None:
        self.outbox.invalid(session, code, reason)
        self.close_session(session, close_code, reason)

    def slow_consumer(self, session: Session, buffered_bytes: int) -> None:
        if session.state is SessionState.CLOSED:
            return
        self.counters.other["slow_consumers"] += 1
        self.hooks.notify(
            Hook.SLOW_CONSUMER, client_id=session.id, protocol=session.protocol, buffered_bytes=buffered_bytes
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
            self.outbox.invalid(session, exc.code, exc.reason)
            return None
        if session.state is SessionState.HANDSHAKE:
            if frame.type is FrameType.CONNECT:
                if self._tracer is not None:
                    scope = self._tracer.connect(session.protocol)
                    return tracing.within(scope, self.handshake.connect_received, session, frame)
                return self.handshake.connect_received(session, frame)
            self.outbox.invalid(
                session, ErrorCode.NOT_CONNECTED, f"expected a connect frame first, got {frame.type.name}"
            )
            self.close_session(session, DisconnectCode.POLICY_VIOLATION, "expected a connect frame")
            return None
        return self._frame_handlers[frame.type](session, frame)

    def _dispatch_event(self, session: Session, frame: Frame) -> Awaitable[None] | None:
        handlers = self.handlers.for_event(frame.event)
        if not handlers:
            self.log.debug("no handler for event %r from %s", frame.event, session.id)
            return None
        if frame.type is FrameType.JSON:
            try:
                data = load_json(frame.payload)
            except ProtocolError as exc:
                self.outbox.invalid(session, exc.code, exc.reason, frame)
                return None
        else:
            data = frame.payload
        return self._runner.run(handlers, Context(self, session, frame.event, data))

    # ================================================================== for the facades

    def get_room_members(self, room: str) -> list[str]:
        return self.rooms.table.member_ids(room)

    def get_rooms(self) -> list[str]:
        return self.rooms.table.names()

    def disconnect(self, client_id: str, code: int, reason: str) -> bool:
        """Disconnect the client ``client_id`` of this node; whether it was here."""
        session = self._open.get(client_id)
        if session is None:
            return False
        self.close_session(session, code, reason)
        return True

    def session(self, client_id: str) -> Session | None:
        return self._open.get(client_id)

    def join_client(self, client_id: str, room: str) -> Refusal | None:
        """Put the client ``client_id`` of this node in ``room``, as ``ctx.join_room`` would (the
        same limits and hooks); ``(code, message)`` when refused or not here."""
        session = self._open.get(client_id)
        if session is None:
            return ErrorCode.NOT_CONNECTED, f"no client {client_id!r} on this node"
        return self.rooms.join(session, room)

    def leave_client(self, client_id: str, room: str) -> Refusal | None:
        session = self._open.get(client_id)
        if session is None:
            return ErrorCode.NOT_CONNECTED, f"no client {client_id!r} on this node"
        return self.rooms.leave(session, room)

    def get_clients(self, room: str | None = None) -> list[ClientInfo]:
        return self.directory.clients(room)

    def stats(self, transports: Mapping[str, Mapping[str, Any]]) -> Stats:
        return snapshot(
            self.counters,
            open_sessions=self._open,
            by_transport=self.directory.by_transport,
            rooms=len(self.rooms.table),
            limiter_entries=self.limits.size(),
            degraded=self.degradation.reasons(),
            latency=self.requests.latency.snapshot(),
            uptime=time.monotonic() - self._started_at,
            transports=transports,
        )

    # ================================================================== lifecycle

    def tls_handshake_failed(self, remote_address: str, protocol: str, category: str, reason: str) -> None:
        self.admissions.tls_handshake_failed(remote_address, protocol, category, reason)

    async def start(self) -> None:
        self.check_history(self._config)
        await self.fanout.broker.start(BrokerNode(self))
        self._started_at = time.monotonic()
        self.admissions.accepting = True
        self.heartbeat.start()

    def serving(self) -> None:
        """Every transport listens: the ``on_server_started`` hooks are told."""
        self.hooks.notify(Hook.SERVER_STARTED)

    def stop_accepting(self) -> None:
        """The graceful stop begins: the ``on_server_stopping`` hooks are told, then new
        connections are refused."""
        self.hooks.notify(Hook.SERVER_STOPPING)
        self.admissions.accepting = False

    @property
    def accepting(self) -> bool:
        return self.admissions.accepting

    @property
    def busy(self) -> bool:
        """Whether any session or task is left (tests of shutdown assert it is not)."""
        return bool(self.directory.all or self.tasks)

    async def stop(self, timeout: float) -> None:
        """Graceful end, bounded by ``timeout`` seconds: new connections are refused, work in
        flight (handlers, the ACKs they answer) finishes while connections are still open, then
        every session gets a going-away close (1001); what still runs is cancelled."""
        self.admissions.accepting = False
        self.heartbeat.stop()
        await self.tasks.finish(timeout)
        for session in tuple(self.directory.all):
            self.close_session(session, DisconnectCode.GOING_AWAY, "server shutting down")
        await self.fanout.broker.stop()
        self.rooms.table.watcher = None
        self.presence.stop()

    def close_session(self, session: Session, code: int, reason: str) -> None:
        """Close from our side: a disconnect frame with code and reason, then the connection."""
        if session.state is SessionState.CLOSED:
            return
        self.outbox.send(
            session, encode_frame(FrameType.DISCONNECT, "", dump_json({"code": code, "reason": reason}))
        )
        session.connection.close(code, reason)
        self.session_closed(session, code, reason)
