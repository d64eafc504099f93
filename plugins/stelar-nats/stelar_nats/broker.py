"""``NatsBroker``: deliveries, requests, disconnects and cluster-wide reads between nodes on NATS.

Routing (see ``subjects.py``): a room's traffic goes to the room's subject, which a node
subscribes to only while it has a local member of the room (subscriptions.py, which also
confirms them before a join is answered); broadcasts to ``P.all``; what is
meant for one client to that client's subject, which only its node subscribes to, so NATS routes
it (and says "no responders" at once when no node has the client: no directory to keep). Every
emit is delivered locally first and then published once; receivers skip their own node's.

Reads ask every live node (known from the heartbeats on ``P.nodes``) in parallel and wait at
most ``command_timeout``: they see each node's clients, rooms and metadata as they are now. A
node that does not answer in time is left out of the read and counted.

Publishing never waits on the hub's path: envelopes join a bounded queue that one writer hands
to the NATS client in order (so messages keep their order per sender). While NATS is away they
are dropped at once and counted (``broker_publish_failures``), never buffered for later: the
node serves its own clients, degraded, until NATS is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from stelar_core.plugin_api import (
    AckError,
    AckTimeout,
    BrokerPort,
    ClientInfo,
    Delivery,
    ErrorCode,
    NotConnected,
    Options,
    Problems,
    ack_timeout,
    request_error,
    request_failure,
)
from stelar_nats.envelope import (
    Envelope,
    EnvelopeError,
    Kind,
    decode,
    encode,
    json_body,
    read_json,
    trace_of,
    with_trace,
)
from stelar_nats.failures import NATS_FAILURES, NATS_FAILURES_OR_TIMEOUT
from stelar_nats.history import Callbacks, JetStreamHistory
from stelar_nats.nodes import NodeTable
from stelar_nats.presence import NodePresence
from stelar_nats.subjects import Subjects
from stelar_nats.subscriptions import PENDING_MESSAGES, Subscriptions

COMPONENT = "nats"
PUBLISH_FAILURES = "broker_publish_failures"
INVALID_ENVELOPES = "broker_invalid_envelopes"
RESUBSCRIBES = "broker_resubscribes"  # reconnected: the NATS client subscribed everything again
READ_TIMEOUTS = "broker_read_timeouts"  # a live node that did not answer a read in time
# Publications to a room with history that JetStream did not store: delivered on this node only.
HISTORY_UNAVAILABLE = "history_unavailable"


class NatsUnavailable(NotConnected):
    """NATS cannot be reached: clients on other nodes are out of reach for now."""


def _tls(options: Options) -> ssl.SSLContext | None:
    if not (options.tls_ca or options.tls_cert):
        return None
    context = ssl.create_default_context(cafile=options.tls_ca)
    if options.tls_cert:
        context.load_cert_chain(options.tls_cert, options.tls_key)
    return context


class NatsBroker:
    def __init__(self, options: Options, node_id: str) -> None:
        self._options = options
        self._node_id = node_id
        self._subjects = Subjects(options.prefix)
        self._max_size: int = options.max_message_size
        self._port: BrokerPort | None = None
        self._nc: Client | None = None
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False
        self._problems = Problems()
        # Subjects of rooms and clients: wanted now, subscribed, and confirmed by the server.
        self._subscriptions = Subscriptions(
            options, node_id, self._subjects.node(node_id), self._on_message, lambda: self._log
        )
        self._requests = 0
        self._answering: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._beat_seen = asyncio.Event()
        self.nodes = NodeTable(options.node_timeout)
        self.connected = asyncio.Event()
        callbacks = Callbacks(
            lambda delivery: self.port.deliver(delivery),
            functools.partial(self._problem, "history"),
            functools.partial(self._invalid, "skipped a message in a room's history on JetStream"),
        )
        self.history = JetStreamHistory(self._subjects, options, node_id, lambda: self._nc, callbacks)
        self.presence = NodePresence(
            self._gather, functools.partial(self._invalid, "a node's answer to a read left out")
        )

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def port(self) -> BrokerPort:
        if self._port is None:
            raise RuntimeError("broker not started: start the server before emitting")
        return self._port

    # ================================================================== lifecycle

    async def start(self, port: BrokerPort) -> None:
        self._closing = False
        self._port = port
        self._log = port.logger("stelar.nats")
        port.watch(self)
        self._tasks = [
            asyncio.ensure_future(task)
            for task in (
                self._connect(),
                self._write(),
                self._subscriptions.keep_applying(self.connected, lambda: self._nc),
            )
        ]
        # A started node receives what the cluster publishes; with NATS away it starts anyway,
        # degraded, after connect_timeout, and goes on trying.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.connected.wait(), self._options.connect_timeout)
        if not self.connected.is_set():
            self._problem("connection", "cannot connect to NATS")

    async def stop(self) -> None:
        self._closing = True
        nc = self._nc
        if nc is not None and nc.is_connected:
            with contextlib.suppress(*NATS_FAILURES):
                await nc.publish(self._subjects.nodes, self._heartbeat(alive=False))
        # Closed before its users are cancelled: a cancelled flush whose PONG still came would
        # upset the NATS client's reader.
        if nc is not None:
            with contextlib.suppress(*NATS_FAILURES_OR_TIMEOUT):
                await asyncio.wait_for(nc.close(), self._options.command_timeout)
        await self.history.stop()
        for task in [*self._tasks, *self._answering, *self._background]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._answering, *self._background, return_exceptions=True)
        self._tasks = []
        self._nc = None
        self._subscriptions.clear()
        self._queue.clear()
        self._port = None

    async def _connect(self) -> None:
        """Connect (again and again while NATS is away at start), then subscribe and beat."""
        delay = self._options.reconnect_delay
        while not self._closing:
            try:
                self._nc = await nats.connect(
                    servers=list(self._options.servers),
                    name=f"stelar {self._node_id}",
                    connect_timeout=max(1, round(self._options.connect_timeout)),
                    reconnect_time_wait=self._options.reconnect_delay,
                    max_reconnect_attempts=-1,
                    allow_reconnect=True,
                    # A paused or cut-off server is found by the client's pings too.
                    ping_interval=max(1, round(self._options.heartbeat_interval)),
                    max_outstanding_pings=2,
                    # Nothing waits for a server that is away: the writer drops instead.
                    pending_size=self._options.max_pending_bytes,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                    user_credentials=self._options.credentials,
                    user=self._options.user,
                    password=self._options.password,
                    token=self._options.token,
                    tls=_tls(self._options),
                )
                break
            except (nats.errors.Error, OSError) as exc:
                self._problem("connection", f"cannot connect to NATS: {type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._options.reconnect_max_delay)
        nc = self._nc
        assert nc is not None
        fixed = (self._subjects.all, self._subjects.node(self._node_id), self._subjects.nodes)
        for subject in fixed:
            await nc.subscribe(subject, cb=self._on_message, pending_msgs_limit=PENDING_MESSAGES)
        await self._subscriptions.apply(nc)
        self._problem("connection", None)
        self.connected.set()
        await self._beats()

    async def _disconnected(self) -> None:
        if self._closing:
            return
        self.connected.clear()
        self._subscriptions.lost()
        self._problem("connection", "disconnected from NATS")

    async def _reconnected(self) -> None:
        self._spawn(self.history.reconnected())
        # The client subscribed everything again; the heartbeat that comes back says it is live.
        self.port.count(RESUBSCRIBES)
        self._problem("connection", None)
        self.connected.set()
        self._subscriptions.changed.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _error(self, exc: Exception) -> None:
        if not isinstance(exc, nats.errors.SlowConsumerError):
            self._log.warning("NATS: %s: %s", type(exc).__name__, exc)
            return
        self.port.count("broker_slow_consumer_drops")

    def _problem(self, where: str, reason: str | None) -> None:
        """Record (or clear, ``None``) a problem with ``where`` ("connection", "heartbeat")."""
        if self._problems.record(where, reason) and self._port is not None:
            self._port.set_degraded(COMPONENT, self._problems.summary)

    # ================================================================== heartbeats

    def _heartbeat(self, alive: bool = True) -> bytes:
        stats = json_body(self.port.stats().to_dict()) if alive else b""
        return encode(Envelope(Kind.HEARTBEAT, self._node_id, (alive,), stats), self._max_size)

    async def _beats(self) -> None:
        """Every heartbeat interval, say this node is alive (with its statistics) and wait for
        the heartbeat to come back: a connection that looks open but delivers nothing (a paused
        server) is found this way, and the node is degraded until one comes back again."""
        while not self._closing:
            nc = self._nc
            if nc is not None and nc.is_connected:
                self._beat_seen.clear()
                try:
                    await nc.publish(self._subjects.nodes, self._heartbeat())
                    await asyncio.wait_for(self._beat_seen.wait(), self._options.command_timeout)
                except (TimeoutError, *NATS_FAILURES) as exc:
                    self._problem("heartbeat", f"no heartbeat came back ({type(exc).__name__})")
                else:
                    self._problem("heartbeat", None)
                    if self._subscriptions.unconfirmed:
                        self._subscriptions.changed.set()  # a probe that failed: try again
            await asyncio.sleep(self._options.heartbeat_interval)

    # ================================================================== membership

    def client_opened(self, info: ClientInfo) -> None:
        self._subscriptions.want(self._subjects.client(info.id), True)

    def client_closed(self, client_id: str) -> None:
        self._subscriptions.want(self._subjects.client(client_id), False)

    def client_updated(self, info: ClientInfo) -> None:
        """Nothing to write: reads ask the node, which answers with the metadata as it is now."""

    def room_joined(self, client_id: str, room: str, first: bool) -> None:
        if first:
            self._subscriptions.want(self._subjects.room(room), True)

    def room_left(self, client_id: str, room: str, last: bool) -> None:
        if last:
            self._subscriptions.want(self._subjects.room(room), False)
            self.history.release(room)

    def room_ready(self, room: str) -> Awaitable[None] | None:
        """None once NATS has confirmed this node's subscription to ``room``; else an awaitable
        of that, at most ``command_timeout``. Not at all while NATS is away: the node then
        serves its own clients, degraded, and holds no join."""
        subject = self._subjects.room(room)
        if not self.connected.is_set() or self._subscriptions.is_live(subject):
            return None
        return self._subscriptions.live_within(subject)

    # ================================================================== out

    def publish(self, delivery: Delivery) -> None:
        port = self.port
        if delivery.history is not None:
            if self.connected.is_set():
                self.history.publish(delivery, self._history_failed)
            else:
                self._history_failed(delivery, NatsUnavailable("NATS is unavailable"))
            return
        port.deliver(delivery)
        client_id = delivery.client_id
        if client_id is not None and port.has_client(client_id):
            return
        fields = with_trace((delivery.room, client_id, sorted(delivery.exclude)), delivery.trace)
        try:
            payload = encode(Envelope(Kind.DELIVER, self._node_id, fields, delivery.frame), self._max_size)
        except EnvelopeError as exc:
            self._failed(exc)
            return
        if client_id is not None:
            subject = self._subjects.client(client_id)
        elif delivery.room is not None:
            subject = self._subjects.room(delivery.room)
        else:
            subject = self._subjects.all
        self._send(subject, payload)

    def _invalid(self, what: str, exc: EnvelopeError) -> None:
        """Something from NATS that is not a stelar envelope: ``what`` became of it (counted)."""
        self.port.count(INVALID_ENVELOPES)
        self._log.warning("%s: %s", what, exc)

    def _history_failed(self, delivery: Delivery, exc: BaseException) -> None:
        """A publication JetStream did not store: delivered on this node only, unpositioned,
        and counted (as the Redis broker does while Redis is away)."""
        port = self.port
        port.count(HISTORY_UNAVAILABLE)
        if self.connected.is_set():
            self._log.warning("a publication was not stored: %s: %s", type(exc).__name__, exc)
        port.deliver(Delivery(delivery.frame, delivery.room, exclude=delivery.exclude, trace=delivery.trace))

    def _send(self, subject: str, payload: bytes) -> None:
        if not self.connected.is_set():
            self._failed(None)
        elif len(self._queue) >= self._options.max_pending:
            self._failed(None, "too many messages waiting for NATS (nats.max_pending)")
        else:
            self._queue.append((subject, payload))
            self._wake.set()

    def _failed(self, exc: BaseException | None, reason: str | None = None) -> None:
        if self._port is not None:
            self._port.count(PUBLISH_FAILURES)
        if isinstance(exc, EnvelopeError) or reason is not None:
            self._log.warning("not sent to other nodes: %s", exc or reason)

    async def _write(self) -> None:
        queue = self._queue
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while queue:
                nc = self._nc
                if nc is None or not self.connected.is_set():
                    for _ in range(len(queue)):
                        self._failed(None)
                    queue.clear()
                    break
                subject, payload = queue.popleft()
                try:
                    await nc.publish(subject, payload)
                except NATS_FAILURES as exc:
                    # Fail fast: what waits behind it would meet the same server.
                    for _ in range(len(queue) + 1):
                        self._failed(exc)
                    queue.clear()

    # ================================================================== routed to one client

    async def _ask(self, client_id: str, envelope: Envelope, timeout: float) -> Envelope | None:
        """``envelope`` to the node of ``client_id`` and its answer; None when no node has it."""
        nc = self._nc
        if nc is None or not self.connected.is_set():
            raise NatsUnavailable("NATS is unavailable: clients of other nodes are out of reach")
        payload = encode(envelope, self._max_size)
        try:
            message = await nc.request(self._subjects.client(client_id), payload, timeout=timeout)
        except nats.errors.NoRespondersError:
            return None
        try:
            answer = decode(message.data, self._max_size)
        except EnvelopeError as exc:
            self.port.count(INVALID_ENVELOPES)
            raise NatsUnavailable(f"a node answered with a malformed envelope: {exc}") from None
        return answer

    async def request(self, client_id: str, event: str, data: Any, timeout: float) -> Any:
        """Ask a client of another node: the timeout runs here, at the origin."""
        if self._requests >= self._options.max_pending_requests:
            raise AckError(
                ErrorCode.TOO_MANY_PENDING_ACKS,
                f"{self._requests} requests already wait for other nodes (nats.max_pending_requests)",
            )
        try:
            envelope = Envelope(Kind.REQUEST, self._node_id, (client_id, event, timeout), json_body(data))
        except EnvelopeError as exc:
            raise ValueError(str(exc)) from None
        self._requests += 1
        try:
            answer = await self._ask(client_id, envelope, timeout)
        except nats.errors.TimeoutError:
            raise ack_timeout(event, timeout) from None
        finally:
            self._requests -= 1
        if answer is None:
            raise NotConnected(f"no client {client_id!r} is connected to any node")
        value = read_json(answer.body)
        if answer.fields[0]:
            return value
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            self.port.count(INVALID_ENVELOPES)
            raise NatsUnavailable(f"a node answered a request with a malformed error: {value!r}")
        raise request_error(*value)

    async def disconnect(self, client_id: str, code: int, reason: str) -> bool:
        if self.port.disconnect(client_id, code, reason):
            return True
        return await self._routed(
            client_id, Envelope(Kind.DISCONNECT, self._node_id, (client_id, code, reason))
        )

    async def send(self, client_id: str, frame: bytes) -> bool:
        if self.port.has_client(client_id):
            self.port.deliver(Delivery(frame, client_id=client_id))
            return True
        return await self._routed(
            client_id, Envelope(Kind.DELIVER, self._node_id, (None, client_id, []), frame)
        )

    async def membership(self, client_id: str, room: str, join: bool) -> bool:
        if self.port.has_client(client_id):
            (self.port.join if join else self.port.leave)(client_id, room)
            return True
        return await self._routed(
            client_id, Envelope(Kind.MEMBERSHIP, self._node_id, (client_id, room, join))
        )

    async def _routed(self, client_id: str, envelope: Envelope) -> bool:
        """``envelope`` to the node that has ``client_id``; whether one had it."""
        try:
            answer = await self._ask(client_id, envelope, self._options.command_timeout)
        except nats.errors.TimeoutError:
            raise NatsUnavailable(f"the node of client {client_id!r} did not answer in time") from None
        return answer is not None and bool(answer.fields[0])

    # ================================================================== in

    async def _on_message(self, message: Msg) -> None:
        port = self._port
        if port is None:
            return
        try:
            envelope = decode(message.data, self._max_size)
            await self._received(port, envelope, message)
        except EnvelopeError as exc:
            port.count(INVALID_ENVELOPES)
            self._log.warning("dropped a message from NATS on %s: %s", message.subject, exc)

    async def _received(self, port: BrokerPort, envelope: Envelope, message: Msg) -> None:
        kind, fields = envelope.kind, envelope.fields
        if kind is Kind.PROBE:
            if envelope.origin == self._node_id:
                self._subscriptions.probe_came_back(fields[0])
        elif kind is Kind.HEARTBEAT:
            if envelope.origin == self._node_id:
                self._beat_seen.set()
            elif fields[0]:
                if envelope.origin not in self.nodes:
                    # A node just started: tell it at once that this one is here too.
                    self._send(self._subjects.nodes, self._heartbeat())
                if not self.nodes.beat(envelope.origin, read_json(envelope.body)):
                    raise EnvelopeError(f"a heartbeat of node {envelope.origin!r} not taken")
            else:
                self.nodes.gone(envelope.origin)
        elif kind in (Kind.PUBLISHED, Kind.EPOCH):
            # (Only JetStream hands those on, to a room's consumer: following.py.)
            raise EnvelopeError(f"a {kind.name} envelope on {message.subject}, not from JetStream")
        elif envelope.origin == self._node_id:
            return  # delivered here before it was published
        elif kind is Kind.DELIVER:
            room, client_id, exclude = fields[:3]
            had = client_id is None or port.has_client(client_id)
            trace = trace_of(envelope)
            port.deliver(Delivery(envelope.body, room, client_id, frozenset(exclude), trace=trace))
            await self._reply(message, had)
        elif kind is Kind.REQUEST:
            if len(self._answering) >= self._options.max_pending_requests:
                error = [ErrorCode.TOO_MANY_PENDING_ACKS, "the client's node answers too many requests"]
                await self._reply(message, False, error)
            else:
                task = asyncio.ensure_future(self._answer(port, envelope, message))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
        elif kind is Kind.DISCONNECT:
            client_id, code, reason = fields
            await self._reply(message, port.disconnect(client_id, code, reason))
        elif kind is Kind.MEMBERSHIP:
            client_id, room, join = fields
            had = port.has_client(client_id)
            (port.join if join else port.leave)(client_id, room)
            await self._reply(message, had)
        elif kind is Kind.READ:
            await self._reply(message, True, self._local_read(port, *fields))

    async def _reply(self, message: Msg, ok: bool, value: Any = None) -> None:
        nc = self._nc
        if not message.reply or nc is None:
            return
        try:
            payload = encode(Envelope(Kind.ANSWER, self._node_id, (ok,), json_body(value)), self._max_size)
        except EnvelopeError as exc:
            error = [ErrorCode.PAYLOAD_TOO_LARGE, str(exc)]
            payload = encode(Envelope(Kind.ANSWER, self._node_id, (False,), json_body(error)), self._max_size)
        with contextlib.suppress(*NATS_FAILURES):
            await nc.publish(message.reply, payload)

    async def _answer(self, port: BrokerPort, envelope: Envelope, message: Msg) -> None:
        """Ask the local client for another node and answer that node."""
        client_id, event, timeout = envelope.fields
        ok, value = False, None
        try:
            value = await port.ask(client_id, event, read_json(envelope.body), timeout)
            ok = True
        except (AckError, AckTimeout, NotConnected) as exc:
            value = list(request_failure(exc))
        except EnvelopeError as exc:
            port.count(INVALID_ENVELOPES)
            value = [ErrorCode.INVALID_PAYLOAD, str(exc)]
        await self._reply(message, ok, value)

    # ================================================================== cluster reads

    def _local_read(self, port: BrokerPort, what: str, argument: str) -> Any:
        """This node's part of a cluster read: only clients other nodes can reach already."""
        reachable = self._subscriptions.is_live
        live = [info for info in port.clients() if reachable(self._subjects.client(info.id))]
        if what == "clients":
            return [
                [
                    info.id,
                    info.protocol,
                    info.remote_address,
                    sorted(info.rooms),
                    dict(info.metadata),
                    info.connected_at,
                ]
                for info in live
            ]
        if what == "members":
            return [info.id for info in live if argument in info.rooms]
        if what == "rooms":
            return sorted({room for info in live for room in info.rooms})
        if what == "presence":
            return self.presence.local(argument)
        raise EnvelopeError(f"unknown read {what!r}")

    async def _gather(self, what: str, argument: str = "") -> list[Any]:
        """Every live node's answer to a read (this node's own without NATS)."""
        nc = self._nc
        if nc is None or not self.connected.is_set():
            raise NatsUnavailable("the cluster's state cannot be read: NATS is unavailable")
        answers = [self._local_read(self.port, what, argument)]
        payload = encode(Envelope(Kind.READ, self._node_id, (what, argument)), self._max_size)
        timeout = self._options.command_timeout
        others = self.nodes.alive()
        replies = await asyncio.gather(
            *(nc.request(self._subjects.node(node), payload, timeout=timeout) for node in others),
            return_exceptions=True,
        )
        for node, reply in zip(others, replies, strict=True):
            try:
                if isinstance(reply, BaseException):
                    raise reply
                answer = decode(reply.data, self._max_size)
                if answer.kind is not Kind.ANSWER or not answer.fields[0]:
                    raise EnvelopeError(f"node {node} could not answer: {read_json(answer.body)}")
                answers.append(read_json(answer.body))
            except (nats.errors.Error, ConnectionError, EnvelopeError) as exc:
                self.port.count(READ_TIMEOUTS)
                self._log.warning("node %s left out of a read: %s", node, exc or type(exc).__name__)
        return answers

    async def clients(self, room: str | None) -> list[ClientInfo]:
        infos = [_info(item) for answer in await self._gather("clients") for item in answer]
        return infos if room is None else [info for info in infos if room in info.rooms]

    async def room_members(self, room: str) -> list[str]:
        return sorted({member for answer in await self._gather("members", room) for member in answer})

    async def rooms(self) -> list[str]:
        return sorted({room for answer in await self._gather("rooms") for room in answer})

    async def node_stats(self) -> dict[str, dict[str, Any]]:
        if not self.connected.is_set():
            raise NatsUnavailable("the cluster's state cannot be read: NATS is unavailable")
        return {**self.nodes.stats(), self._node_id: self.port.stats().to_dict()}


def _info(item: Any) -> ClientInfo:
    try:
        client_id, protocol, address, rooms, metadata, connected_at = item
        return ClientInfo(client_id, protocol, address, frozenset(rooms), metadata, connected_at)
    except (TypeError, ValueError):
        raise EnvelopeError(f"a node described a client as {item!r}") from None
