"""``RedisBroker``: deliveries, requests and disconnects between nodes over Redis pub/sub.

Routing (see ``keys.py``): a room's traffic goes to ``P:room:R``, which a node subscribes to only
while it has a local member of R; broadcasts to ``P:all``; ``to_id``, requests, answers and
disconnects to the one node that has the client (``P:to:N``, found in the directory by one Lua
call). Every emit is delivered locally first and then published once: one Redis command per
broadcast, whatever the number of members or nodes; receivers skip their own node's messages.

A room with history is published by one Lua script (``history.py``) that positions, stores and
publishes the message; every node, this one included, delivers it when it comes back from the
room's channel, so each node writes a room's publications in the order of their offsets.

Publishing never waits on the hub's path: envelopes join a bounded queue that one writer sends
in pipelined batches, in order (so messages keep their order per sender). While Redis is away
they are dropped at once and counted (``broker_publish_failures``): local delivery goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable
from typing import Any

import msgpack
from redis.exceptions import NoScriptError

from stelar_core.plugin_api import (
    AckError,
    AckTimeout,
    BrokerPort,
    ClientInfo,
    Delivery,
    ErrorCode,
    NotConnected,
    ProtocolError,
    ack_timeout,
    decode_frame,
    decode_publication,
    request_error,
    request_failure,
    wait_for,
)
from stelar_redis.envelope import (
    Answer,
    Deliver,
    Disconnect,
    Envelope,
    EnvelopeError,
    Membership,
    Probe,
    Published,
    Request,
    decode,
    encode,
)
from stelar_redis.history import RedisHistory
from stelar_redis.node import REDIS_FAILURES, ClusterUnavailable, RedisNode
from stelar_redis.ops import deliver_op, history_op, route_op
from stelar_redis.presence import Op, unpack_info
from stelar_redis.room_presence import RedisRoomPresence
from stelar_redis.sessions import RedisSessions
from stelar_redis.subscriber import PlainSubscriber, ShardedSubscriber, Subscriber

PUBLISH_FAILURES = "broker_publish_failures"
INVALID_ENVELOPES = "broker_invalid_envelopes"
# Publications to a room with history made while Redis was away: delivered on this node only,
# without a position (and not stored).
HISTORY_UNAVAILABLE = "history_unavailable"
BATCH = 512  # envelopes per pipeline
READ_TIMEOUT = 1.0  # seconds a pub/sub read waits before looking at the connection's state
# The listener subscribed everything again: after Redis came back, or a Redis Cluster moved a slot.
RESUBSCRIBES = "broker_resubscribes"

# Outgoing: (command, future for its result or None).
Outgoing = tuple[Op, "asyncio.Future[Any] | None"]


class RedisBroker:
    def __init__(self, node: RedisNode) -> None:
        self._node = node
        self._keys = node.keys
        self._options = node.options
        self._max_size: int = node.options.max_message_size
        self._port: BrokerPort | None = None
        self._queue: deque[Outgoing] = deque()
        self._wake = asyncio.Event()
        self._requests: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._request_ids = itertools.count(1)
        self._answering = 0
        self._rooms: set[str] = set()
        self._subscriptions: deque[tuple[bool, str]] = deque()
        self._subscribe_wake = asyncio.Event()
        self._pubsub: Subscriber | None = None
        self._stale = False
        self._probe_token = 0
        self._probe_seen = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        # Checked by every loop as well as cancelling it: redis-py can swallow a cancellation
        # that lands inside one of its calls, and the loop must still end.
        self._closing = False
        self._answer_tasks: set[asyncio.Task[None]] = set()
        self.subscribed = asyncio.Event()  # set while the pub/sub connection listens
        # Channels Redis has confirmed subscribing this connection to, and who waits for one.
        self._live: set[str] = set()
        self._live_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.history = RedisHistory(node, self._room_live)
        self.sessions = RedisSessions(node, self._send, self._count)
        self.presence = RedisRoomPresence(node, self._send)

    @property
    def node_id(self) -> str:
        return self._node.node_id

    @property
    def port(self) -> BrokerPort:
        if self._port is None:
            raise RuntimeError("broker not started: start the server before emitting")
        return self._port

    # ================================================================== lifecycle

    async def start(self, port: BrokerPort) -> None:
        self._closing = False
        self._port = port
        self._node.attach(port)
        port.watch(self)
        self._tasks = [
            asyncio.ensure_future(task)
            for task in (self._write(), self._listen(), self._subscribe_changes(), self._probe())
        ]
        # A started node receives what the cluster publishes (a broadcast sent right after its
        # start included); with Redis away it starts anyway, degraded, after connect_timeout.
        if self._node.healthy:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.subscribed.wait(), self._options.connect_timeout)

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        self._subscribe_wake.set()
        tasks = [*self._tasks, *self._answer_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        for future in self._requests.values():
            if not future.done():
                future.set_exception(NotConnected("the server is stopping"))
        self._requests.clear()
        self._queue.clear()
        self._port = None

    # ================================================================== membership

    def client_opened(self, info: ClientInfo) -> None:
        self._node.presence.client_opened(info)

    def client_closed(self, client_id: str) -> None:
        self._node.presence.client_closed(client_id)

    def client_updated(self, info: ClientInfo) -> None:
        self._node.presence.client_updated(info)

    def room_joined(self, client_id: str, room: str, first: bool) -> None:
        self._node.presence.room_joined(client_id, room, first)
        if first:
            self._rooms.add(room)
            self._change_subscription(True, room)

    def room_left(self, client_id: str, room: str, last: bool) -> None:
        self._node.presence.room_left(client_id, room, last)
        if last:
            self._rooms.discard(room)
            self._change_subscription(False, room)

    def room_ready(self, room: str) -> Awaitable[None] | None:
        """None once this node's subscription to ``room`` is live; else an awaitable of its
        confirmation (also while the listener is still connecting, as at start: it subscribes to
        every room then), at most ``command_timeout``. Not at all while Redis is away: the node
        then serves its own clients, degraded, and holds no join."""
        if not self._node.healthy or self._keys.room_channel(room) in self._live:
            return None
        return self._ready_within(room)

    async def _ready_within(self, room: str) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._room_live(room), self._options.command_timeout)

    def _change_subscription(self, subscribe: bool, room: str) -> None:
        if subscribe:
            # Not live until Redis confirms this subscription, even if an unsubscribe of the
            # room's last member is still on its way (its confirmation would come first).
            self._live.discard(self._keys.room_channel(room))
        if self._pubsub is None:
            return  # (re)connecting subscribes to self._rooms as they are then
        if len(self._subscriptions) >= self._options.max_pending:
            # Redis is not keeping up: reconnecting subscribes to the rooms as they are then.
            self._subscriptions.clear()
            self._stale = True
            return
        self._subscriptions.append((subscribe, self._keys.room_channel(room)))
        self._subscribe_wake.set()

    # ================================================================== out

    def publish(self, delivery: Delivery) -> None:
        if delivery.history is not None:
            self._publish_history(delivery)
            return
        port = self.port
        port.deliver(delivery)
        client_id = delivery.client_id
        if client_id is not None and port.has_client(client_id):
            return
        try:
            payload = encode(
                Deliver(
                    self.node_id,
                    delivery.frame,
                    delivery.room,
                    client_id,
                    tuple(delivery.exclude),
                    delivery.trace,
                ),
                self._max_size,
            )
        except EnvelopeError as exc:
            self._failed(1, exc)
            return
        if client_id is not None:
            self._send(self._route(client_id, payload))
        else:
            self._send(deliver_op(self._keys, payload, delivery.room))

    def _publish_history(self, delivery: Delivery) -> None:
        room, policy = delivery.room, delivery.history
        assert room is not None and policy is not None
        if not self._node.healthy:
            self.port.count(HISTORY_UNAVAILABLE)
            self.port.deliver(Delivery(delivery.frame, room, exclude=delivery.exclude, trace=delivery.trace))
            return
        try:
            op = history_op(
                self._keys,
                self._node.scripts,
                self.node_id,
                room,
                policy,
                delivery.frame,
                tuple(delivery.exclude),
                self._max_size,
                self._options.history_meta_ttl,
                delivery.trace,
            )
        except EnvelopeError as exc:
            self._failed(1, exc)
            return
        self._send(op)

    async def _room_live(self, room: str) -> None:
        """Return once Redis confirmed this node's subscription to ``room``'s channel."""
        channel = self._keys.room_channel(room)
        if channel in self._live:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._live_waiters.setdefault(channel, []).append(waiter)
        try:
            await waiter
        finally:
            waiters = self._live_waiters.get(channel)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._live_waiters[channel]

    def _confirmed(self, kind: str, channel: str) -> None:
        if kind == "subscribe":
            self._live.add(channel)
            for waiter in self._live_waiters.pop(channel, ()):
                if not waiter.done():
                    waiter.set_result(None)
        elif kind == "unsubscribe":
            self._live.discard(channel)

    def _route(self, client_id: str, payload: bytes) -> Op:
        return route_op(self._keys, self._node.scripts, client_id, payload)

    def _send(self, op: Op, result: asyncio.Future[Any] | None = None) -> None:
        if not self._node.healthy:
            self._failed(1, None, result)
        elif len(self._queue) >= self._options.max_pending:
            self._failed(1, None, result, "too many messages waiting for Redis (redis.max_pending)")
        else:
            self._queue.append((op, result))
            self._wake.set()

    def _count(self, counter: str) -> None:
        if self._port is not None:
            self._port.count(counter)

    def _failed(
        self,
        count: int,
        exc: BaseException | None,
        result: asyncio.Future[Any] | None = None,
        reason: str | None = None,
    ) -> None:
        if self._port is not None:
            self._port.count(PUBLISH_FAILURES, count)
        message = reason or (str(exc) if exc is not None else "Redis is unavailable")
        if isinstance(exc, EnvelopeError):
            self._node.log.warning("not sent to other nodes: %s", exc)
        if result is not None and not result.done():
            result.set_exception(ClusterUnavailable(message))

    async def _write(self) -> None:
        queue = self._queue
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), BATCH))]
                try:
                    async with self._node.client.pipeline(transaction=False) as pipe:
                        for op, _ in batch:
                            pipe.execute_command(*op)
                        results = await pipe.execute(raise_on_error=False)
                except REDIS_FAILURES as exc:
                    # Fail fast: what waits behind this batch would meet the same Redis.
                    dropped = batch + list(queue)
                    queue.clear()
                    for _, result in dropped:
                        self._failed(1, exc, result)
                    self._node.problem("commands", f"{type(exc).__name__}: {exc}")
                    continue
                unloaded: list[Outgoing] = []
                for (op, future), outcome in zip(batch, results, strict=True):
                    if isinstance(outcome, NoScriptError):
                        unloaded.append((op, future))
                    elif isinstance(outcome, Exception):
                        self._failed(1, outcome, future)
                    elif future is not None and not future.done():
                        future.set_result(outcome)
                if unloaded:
                    # Redis restarted empty: load the scripts and send those calls again, first.
                    if await self._node.reload_scripts():
                        queue.extendleft(reversed(unloaded))
                    else:
                        for _, future in unloaded:
                            self._failed(1, None, future)

    # ================================================================== requests

    async def request(self, client_id: str, event: str, data: Any, timeout: float) -> Any:
        """Ask a client of another node: the timeout runs here, at the origin."""
        if len(self._requests) >= self._options.max_pending_requests:
            raise AckError(
                ErrorCode.TOO_MANY_PENDING_ACKS,
                f"{len(self._requests)} requests already wait for other nodes (redis.max_pending_requests)",
            )
        request_id = next(self._request_ids)
        try:
            payload = encode(
                Request(self.node_id, request_id, client_id, event, data, timeout), self._max_size
            )
        except EnvelopeError as exc:
            raise ValueError(str(exc)) from None
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[bool, Any]] = loop.create_future()
        routed: asyncio.Future[Any] = loop.create_future()
        self._requests[request_id] = answer
        try:
            self._send(self._route(client_id, payload), routed)
            clock = self.port.clock
            if not await wait_for(routed, timeout, clock, lambda: ack_timeout(event, timeout)):
                raise NotConnected(f"no client {client_id!r} is connected to any node")
            ok, value = await wait_for(answer, timeout, clock, lambda: ack_timeout(event, timeout))
        finally:
            self._requests.pop(request_id, None)
        if ok:
            return value
        raise request_error(*value)

    async def _answer(self, request: Request) -> None:
        """Ask the local client for another node and publish the answer to that node."""
        self._answering += 1
        try:
            value = await self.port.ask(request.client_id, request.event, request.data, request.timeout)
            answer = Answer(self.node_id, request.request_id, True, value)
        except (AckError, AckTimeout, NotConnected) as exc:
            answer = Answer(self.node_id, request.request_id, False, list(request_failure(exc)))
        finally:
            self._answering -= 1
        try:
            payload = encode(answer, self._max_size)
        except EnvelopeError as exc:
            error = [ErrorCode.PAYLOAD_TOO_LARGE, str(exc)]
            payload = encode(Answer(self.node_id, request.request_id, False, error), self._max_size)
        self._send((self._keys.publish, self._keys.node_channel(request.origin), payload))

    async def disconnect(self, client_id: str, code: int, reason: str) -> bool:
        if self.port.disconnect(client_id, code, reason):
            return True
        return await self._routed(client_id, Disconnect(self.node_id, client_id, code, reason))

    async def send(self, client_id: str, frame: bytes) -> bool:
        if self.port.has_client(client_id):
            self.port.deliver(Delivery(frame, client_id=client_id))
            return True
        return await self._routed(client_id, Deliver(self.node_id, frame, None, client_id, ()))

    async def membership(self, client_id: str, room: str, join: bool) -> bool:
        if self.port.has_client(client_id):
            (self.port.join if join else self.port.leave)(client_id, room)
            return True
        return await self._routed(client_id, Membership(self.node_id, client_id, room, join))

    async def _routed(self, client_id: str, envelope: Envelope) -> bool:
        """``envelope`` to the node that has ``client_id``; whether one had it."""
        routed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._send(self._route(client_id, encode(envelope, self._max_size)), routed)
        return bool(await routed)

    # ================================================================== in

    def _received(self, data: bytes) -> None:
        port = self.port
        try:
            envelope: Envelope = decode(data, self._max_size)
        except EnvelopeError as exc:
            port.count(INVALID_ENVELOPES)
            self._node.log.warning("dropped a message from Redis: %s", exc)
            return
        if isinstance(envelope, Published):
            try:
                publication = decode_publication(decode_frame(envelope.frame))
            except ProtocolError as exc:
                port.count(INVALID_ENVELOPES)
                self._node.log.warning("dropped a publication from Redis: %s", exc)
                return
            port.deliver(
                Delivery(
                    envelope.frame,
                    envelope.room,
                    exclude=frozenset(envelope.exclude),
                    position=publication.position,
                    trace=envelope.trace,
                )
            )
        elif isinstance(envelope, Deliver):
            if envelope.origin != self.node_id:
                port.deliver(
                    Delivery(
                        envelope.frame,
                        envelope.room,
                        envelope.client_id,
                        frozenset(envelope.exclude),
                        trace=envelope.trace,
                    )
                )
        elif isinstance(envelope, Request):
            if self._answering >= self._options.max_pending_requests:
                error = [ErrorCode.TOO_MANY_PENDING_ACKS, "the client's node answers too many requests"]
                answer = Answer(self.node_id, envelope.request_id, False, error)
                self._send(
                    (
                        self._keys.publish,
                        self._keys.node_channel(envelope.origin),
                        encode(answer, self._max_size),
                    )
                )
            else:
                task = asyncio.ensure_future(self._answer(envelope))
                self._answer_tasks.add(task)
                task.add_done_callback(self._answer_tasks.discard)
        elif isinstance(envelope, Answer):
            future = self._requests.get(envelope.request_id)
            if future is not None and not future.done():
                future.set_result((envelope.ok, envelope.value))
        elif isinstance(envelope, Disconnect):
            port.disconnect(envelope.client_id, envelope.code, envelope.reason)
        elif isinstance(envelope, Membership):
            if envelope.join:
                port.join(envelope.client_id, envelope.room)
            else:
                port.leave(envelope.client_id, envelope.room)
        elif envelope.origin == self.node_id and envelope.token == self._probe_token:
            self._probe_seen.set()

    def _channels(self) -> list[str]:
        return [
            self._keys.all,
            self._keys.node_channel(self.node_id),
            *map(self._keys.room_channel, self._rooms),
        ]

    async def _listen(self) -> None:
        """Keep this node's channels subscribed, reconnecting with backoff and jitter (and
        subscribing to everything again, where a Redis Cluster's slot map now says) whenever the
        subscriber fails or a cluster moved a subscribed slot."""
        attempt = 0
        timeout = self._options.connect_timeout + self._options.command_timeout
        listened = False
        while not self._closing:
            subscriber = self._subscriber()
            try:
                rooms = set(self._rooms)
                await asyncio.wait_for(subscriber.subscribe(*self._channels()), timeout)
                self._subscriptions.clear()
                self._pubsub, self._stale = subscriber, False
                # Rooms that gained or lost their last local member while subscribing.
                for room in self._rooms - rooms:
                    self._change_subscription(True, room)
                for room in rooms - self._rooms:
                    self._change_subscription(False, room)
                if listened:
                    self._count(RESUBSCRIBES)
                listened = True
                self.subscribed.set()
                self._node.problem("pubsub", None)
                attempt = 0
                while not self._stale and not self._closing:
                    message = await subscriber.get_message(READ_TIMEOUT)
                    if message is None:
                        continue
                    kind, channel, data = message
                    if kind == "message":
                        self._received(data)
                    else:
                        self._confirmed(kind, channel)
            except REDIS_FAILURES as exc:
                self._node.problem("pubsub", f"{type(exc).__name__}: {exc}")
            finally:
                self._pubsub = None
                self._live.clear()
                self.subscribed.clear()
                # Bounded: closing a connection to a paused Redis must not hold up a reconnect or a stop.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(subscriber.close(), timeout)
            await asyncio.sleep(self._node.delay(attempt))
            attempt += 1

    def _subscriber(self) -> Subscriber:
        if self._node.cluster:
            return ShardedSubscriber(self._node.client)
        # No socket timeout: a quiet channel is not a failure; the liveness probe finds a dead one.
        return PlainSubscriber(self._node.connect(socket_timeout=None, max_connections=2))

    async def _subscribe_changes(self) -> None:
        """Room subscriptions as members come and go, in order, on the listening connection."""
        while not self._closing:
            await self._subscribe_wake.wait()
            self._subscribe_wake.clear()
            while self._subscriptions and self._pubsub is not None:
                subscribe, channel = self._subscriptions.popleft()
                try:
                    await (
                        self._pubsub.subscribe(channel) if subscribe else self._pubsub.unsubscribe(channel)
                    )
                except REDIS_FAILURES:
                    self._stale = True  # the listener reconnects and subscribes to the current rooms

    async def _probe(self) -> None:
        """Every heartbeat interval, publish to this node's own channel and wait for it: a
        connection that looks open but delivers nothing (a paused Redis) is found this way."""
        while not self._closing:
            await asyncio.sleep(self._options.heartbeat_interval)
            if self._pubsub is None:
                continue
            self._probe_token += 1
            self._probe_seen.clear()
            payload = encode(Probe(self.node_id, self._probe_token), self._max_size)
            try:
                await self._node.client.execute_command(
                    self._keys.publish, self._keys.node_channel(self.node_id), payload
                )
                await asyncio.wait_for(self._probe_seen.wait(), self._options.command_timeout)
            except REDIS_FAILURES as exc:
                self._node.problem("pubsub", f"liveness probe failed ({type(exc).__name__})")
                self._stale = True
                continue
            self._node.problem("pubsub", None)

    # ================================================================== cluster reads

    async def _read(self, what: str, argument: str = "", skip: str = "") -> list[Any]:
        try:
            result: list[Any] = await self._node.scripts.read(
                keys=[self._keys.nodes], args=[self._keys.prefix, what, argument, skip]
            )
        except REDIS_FAILURES as exc:
            raise ClusterUnavailable(
                f"the cluster's state cannot be read: {type(exc).__name__}: {exc}"
            ) from exc
        return result

    async def clients(self, room: str | None) -> list[ClientInfo]:
        items = await self._read("clients")
        infos = [unpack_info(key.decode(), value) for key, value in zip(items[::2], items[1::2], strict=True)]
        return infos if room is None else [info for info in infos if room in info.rooms]

    async def room_members(self, room: str) -> list[str]:
        return sorted({member.decode() for member in await self._read("members", room)})

    async def rooms(self) -> list[str]:
        return sorted({room.decode() for room in await self._read("rooms")})

    async def node_stats(self) -> dict[str, dict[str, Any]]:
        return unpack_node_stats(await self._read("stats"))


def unpack_node_stats(items: list[Any]) -> dict[str, dict[str, Any]]:
    """A stats read's reply (node IDs and their packed statistics): statistics by node."""
    return {
        node.decode(): msgpack.unpackb(stats, raw=False)
        for node, stats in zip(items[::2], items[1::2], strict=True)
        if stats
    }
