"""Room history on JetStream: one stream holds every room's publications, any node serves any room.

The stream ``<prefix>_history`` captures the subjects ``P.room.*.h``: a room with history is
published there, and the stream keeps each room's last ``history_max_size``
(``max_msgs_per_subject``) for at most ``history_max_age``. A node with members in the room
receives what the stream stored through a consumer of its own (following.py).

**Positions without a sequencer of our own.** A room's offsets count 1, 2, 3... in its epoch,
while JetStream's sequence is the whole stream's. The offset of a publication is the offset of
the room's last message plus one, and it is stored with ``Nats-Expected-Last-Subject-Sequence``
set to that last message's sequence: if another node stored one in between, JetStream refuses,
and this node reads the last message again and retries. So every stored publication's offset is
exactly one more than the one before it, whichever node published it, and every node receives
them in that order (JetStream sends a subject's messages on in the order it stored them).

**Epochs.** The first message of a room is an epoch marker (offset 0), written by whoever first
needs the room's position (a join reading it, or a publication): from then on every node reads
the same epoch. When a room's messages have all expired the next one starts a new epoch, as
clients must then be told (their offsets mean nothing any more). So does a last message that is
not a stelar envelope (something else published on the room's history subject): it is counted
and the room goes on in a new epoch, never stuck behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, Header, StorageType

from stelar_core.plugin_api import (
    Delivery,
    HistoryPage,
    Position,
    ProtocolError,
    RoomPolicy,
    decode_frame,
    decode_publication,
    encode_publication,
    new_epoch,
)
from stelar_nats.envelope import Envelope, EnvelopeError, Kind, decode, encode, trace_of, with_trace
from stelar_nats.following import Following
from stelar_nats.recent import Recent
from stelar_nats.subjects import Subjects

WRONG_LAST_SEQUENCE = 10071  # JetStream's error code: another message was stored in between
NO_MESSAGE = 10037  # no message found (the subject has none)
EPOCH_ATTEMPTS = 20  # tries to read or start a room's epoch while other nodes write theirs

Failed = Callable[[Delivery, BaseException], None]


@attrs.frozen
class Callbacks:
    """What the history hands its broker: stored publications, the stream's health, and what
    it could not read."""

    deliver: Callable[[Delivery], None]  # a stored publication, to this node's members
    problem: Callable[[str | None], None]  # JetStream failed to store (why), or stored again (None)
    invalid: Callable[[EnvelopeError], None]  # a stored message that is not a stelar envelope


def stream_name(prefix: str) -> str:
    return prefix.replace(".", "_") + "_history"


class JetStreamHistory:
    """The broker's ``history`` (a ``HistoryStore``) and its publisher."""

    def __init__(
        self,
        subjects: Subjects,
        options: Any,
        origin: str,
        connection: Callable[[], Client | None],
        callbacks: Callbacks,
    ) -> None:
        self._subjects = subjects
        self._options = options
        self._origin = origin
        self._connection = connection
        self._callbacks = callbacks
        self._stream = stream_name(subjects.prefix)
        self._following = Following(self._stream, subjects.history, self._stored)
        # The last publications of the rooms followed (recent.py), and the JetStream reads under way.
        self._recent: dict[str, Recent] = {}
        self._reading: dict[str, asyncio.Lock] = {}
        self._ready = False
        self._ensuring = asyncio.Lock()
        # Publications waiting for their turn, per room (one stored at a time per room: the
        # offsets of one node's messages follow the order it published them), bounded in all.
        self._queues: dict[str, deque[tuple[Delivery, Failed]]] = {}
        self._waiting = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the stream

    def _js(self) -> JetStreamContext:
        nc = self._connection()
        if nc is None or not nc.is_connected:
            raise nats.errors.ConnectionClosedError
        return nc.jetstream(timeout=self._options.command_timeout)

    async def _ensure(self, js: JetStreamContext) -> None:
        """Make the stream (again, after a server that restarted empty) before using it."""
        if self._ready:
            return
        async with self._ensuring:
            if not self._ready:
                await js.add_stream(
                    name=self._stream,
                    subjects=[f"{self._subjects.prefix}.room.*.h"],
                    max_msgs_per_subject=self._options.history_max_size,
                    max_age=self._options.history_max_age,
                    storage=StorageType.FILE,
                )
                self._ready = True

    async def reconnected(self) -> None:
        """The server may have lost the stream: make sure of it, and follow every room again."""
        self._ready = False
        self._recent.clear()  # (what came while away is not in them: reads go to JetStream)
        if not self._following:
            return
        try:
            js = self._js()
            await self._ensure(js)
            info = await js.stream_info(self._stream)
            await self._following.follow_again(js, info.state.last_seq)
        except (nats.errors.Error, OSError) as exc:
            self._callbacks.problem(f"rooms with history not followed again: {type(exc).__name__}")

    def release(self, room: str) -> None:
        """The room's last member on this node left."""
        self._following.release(room)
        self._recent.pop(room, None)
        self._reading.pop(room, None)

    def _stored(self, room: str, message: Msg) -> None:
        """A publication the stream stored, for this node's members of ``room``."""
        try:
            envelope = decode(message.data, self._options.max_message_size)
            recent = self._recent.get(room)
            if envelope.kind is Kind.EPOCH:
                if recent is not None:
                    recent.began(envelope.fields[1])
                return
            if envelope.kind is not Kind.PUBLISHED or envelope.fields[0] != room:
                raise EnvelopeError(f"a {envelope.kind.name} envelope in room {room!r}'s history")
            position = publication_of(envelope).position
        except EnvelopeError as exc:
            self._callbacks.invalid(exc)
            return
        if recent is not None:
            recent.add(position, message.metadata.timestamp.timestamp(), envelope.body)
        delivery = Delivery(
            envelope.body,
            room,
            exclude=frozenset(envelope.fields[1]),
            position=position,
            trace=trace_of(envelope),
        )
        self._callbacks.deliver(delivery)

    async def _last(self, js: JetStreamContext, room: str) -> tuple[int, Position | None] | None:
        """The room's last message: its stream sequence and the position it holds (None when
        it is not a stelar envelope); None when the room has none."""
        try:
            message = await js.get_last_msg(self._stream, self._subjects.history(room))
        except nats.js.errors.NotFoundError:
            return None
        except nats.js.errors.APIError as exc:
            if exc.err_code == NO_MESSAGE:
                return None
            raise
        assert message.seq is not None
        try:
            return message.seq, position_of(decode(message.data or b"", self._options.max_message_size))
        except EnvelopeError as exc:
            self._callbacks.invalid(exc)
            return message.seq, None

    async def _store(
        self, js: JetStreamContext, room: str, payload: bytes, after_sequence: int
    ) -> int | None:
        """Store ``payload`` as the room's next message: its stream sequence; None if another
        message came first."""
        headers = {Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(after_sequence)}
        try:
            ack = await js.publish(self._subjects.history(room), payload, headers=headers)
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                return None
            if exc.err_code is not None and exc.code == 503:
                self._ready = False
            raise
        return ack.seq

    async def _position(self, js: JetStreamContext, room: str) -> tuple[int, Position]:
        """The room's last sequence and position, writing its epoch marker if it has none."""
        for _ in range(EPOCH_ATTEMPTS):
            last = await self._last(js, room)
            if last is not None and last[1] is not None:
                return last[0], last[1]
            # Nothing yet, or a last message that holds no position: a new epoch follows it.
            epoch = new_epoch()
            marker = encode(Envelope(Kind.EPOCH, self._origin, (room, epoch)), self._options.max_message_size)
            await self._store(js, room, marker, 0 if last is None else last[0])
        raise nats.errors.TimeoutError  # (another writer of epochs all along: not a stelar one)

    # ------------------------------------------------------------------ reading

    async def read(self, room: str, policy: RoomPolicy, after: int | None, limit: int) -> HistoryPage:
        js = self._js()
        await self._ensure(js)
        sequence, position = await self._position(js, room)
        # A join reads: from here on, what is stored after this position reaches the member.
        if room not in self._following:
            self._recent[room] = Recent(position, policy.history_size)
        await self._following.follow(js, room, sequence)
        if after is None or after >= position.offset or limit <= 0:
            return HistoryPage(position)
        oldest = max(after, position.offset - policy.history_size)
        stored_since = time.time() - policy.history_ttl
        publications = self._kept_after(room, oldest, position, stored_since)
        if publications is None:
            # One JetStream read at a time per room: those waiting may then find its answer kept.
            async with self._reading.setdefault(room, asyncio.Lock()):
                publications = self._kept_after(room, oldest, position, stored_since)
                if publications is None:
                    read = await self._after(js, room, position, oldest)
                    recent = self._recent.get(room)
                    if recent is not None:
                        recent.extend_back(position.epoch, read)
                    publications = [(offset, frame) for offset, at, frame in read if at >= stored_since]
        return HistoryPage(position, tuple(publications[:limit]))

    def _kept_after(
        self, room: str, after: int, position: Position, stored_since: float
    ) -> list[tuple[int, bytes]] | None:
        recent = self._recent.get(room)
        return None if recent is None else recent.after(after, position, stored_since)

    async def _after(
        self, js: JetStreamContext, room: str, position: Position, after: int
    ) -> list[tuple[int, float, bytes]]:
        """The room's publications of ``position``'s epoch with offsets above ``after``, up to
        ``position``, oldest first, with the time each was stored."""
        found: list[tuple[int, float, bytes]] = []
        subscription = await js.subscribe(
            self._subjects.history(room),
            stream=self._stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        try:
            while True:
                message = await subscription.next_msg(self._options.command_timeout)
                stored = self._stored_publication(message.data)
                if stored is not None:
                    place, frame = stored
                    offset = place.offset
                    if place.epoch == position.epoch and after < offset <= position.offset:
                        found.append((offset, message.metadata.timestamp.timestamp(), frame))
                if message.metadata.num_pending == 0 or (found and found[-1][0] >= position.offset):
                    return found
        finally:
            await subscription.unsubscribe()

    def _stored_publication(self, data: bytes) -> tuple[Position, bytes] | None:
        """A stored publication's position and frame; None for an epoch marker or what is not
        a stelar envelope."""
        try:
            envelope = decode(data, self._options.max_message_size)
            if envelope.kind is not Kind.PUBLISHED:
                return None
            return publication_of(envelope).position, envelope.body
        except EnvelopeError as exc:
            self._callbacks.invalid(exc)
            return None

    # ------------------------------------------------------------------ publishing

    def publish(self, delivery: Delivery, failed: Failed) -> None:
        """Position, store and send ``delivery`` (in the background, in order per room)."""
        if self._waiting >= self._options.max_pending:
            failed(delivery, OverflowError("too many publications waiting for JetStream (nats.max_pending)"))
            return
        room = delivery.room
        assert room is not None
        self._waiting += 1
        queue = self._queues.get(room)
        if queue is not None:
            queue.append((delivery, failed))
            return
        self._queues[room] = deque([(delivery, failed)])
        task = asyncio.ensure_future(self._drain(room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, room: str) -> None:
        queue = self._queues[room]
        # The room's last message as this node stored it: the next one follows it without
        # reading it back, unless another node stored one in between.
        last: tuple[int, Position] | None = None
        try:
            while queue:
                delivery, failed = queue[0]
                try:
                    last = await self._publish_one(room, delivery, last)
                except (nats.errors.Error, EnvelopeError, OSError) as exc:
                    last = None
                    self._callbacks.problem(f"JetStream did not store a publication: {type(exc).__name__}")
                    failed(delivery, exc)
                else:
                    self._callbacks.problem(None)
                queue.popleft()
                self._waiting -= 1
        finally:
            self._waiting -= len(queue)
            del self._queues[room]

    async def _publish_one(
        self, room: str, delivery: Delivery, last: tuple[int, Position] | None
    ) -> tuple[int, Position]:
        """Store ``delivery`` after the room's ``last`` message (read when None or stale): the
        stored one's sequence and position. Other nodes storing into the room at the same time
        make it read and try again, for at most ``command_timeout``."""
        js = self._js()
        await self._ensure(js)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.command_timeout
        fields = with_trace((room, sorted(delivery.exclude)), delivery.trace)
        while True:
            sequence, after = last if last is not None else await self._position(js, room)
            position = Position(after.epoch, after.offset + 1)
            frame = encode_publication(room, position.epoch, position.offset, delivery.frame)
            envelope = Envelope(Kind.PUBLISHED, self._origin, fields, frame)
            stored = await self._store(js, room, encode(envelope, self._options.max_message_size), sequence)
            if stored is not None:
                return stored, position
            if loop.time() >= deadline:
                raise nats.errors.TimeoutError
            last = None

    async def stop(self) -> None:
        await self._following.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def publication_of(envelope: Envelope) -> Any:
    try:
        return decode_publication(decode_frame(envelope.body))
    except ProtocolError as exc:
        raise EnvelopeError(f"a publication that is not one: {exc}") from None


def position_of(envelope: Envelope) -> Position:
    """The position a stored message of a room holds: an epoch marker's, or a publication's."""
    if envelope.kind is Kind.EPOCH:
        return Position(envelope.fields[1], 0)
    if envelope.kind is Kind.PUBLISHED:
        position: Position = publication_of(envelope).position
        return position
    raise EnvelopeError(f"a {envelope.kind.name} envelope in a room's history")
