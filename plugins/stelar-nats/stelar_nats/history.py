"""Room history on JetStream: one stream holds every room's publications, any node serves any room.

The stream ``<prefix>_history`` captures the subjects ``P.room.*.h``: a room with history is
published there (every node with a member of the room subscribes to ``P.room.<R>.*``, so it gets
them as ordinary NATS messages), and the stream keeps each room's last ``history_max_size``
(``max_msgs_per_subject``) for at most ``history_max_age``.

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
clients must then be told (their offsets mean nothing any more).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
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
from stelar_nats.envelope import Envelope, EnvelopeError, Kind, decode, encode
from stelar_nats.subjects import Subjects

WRONG_LAST_SEQUENCE = 10071  # JetStream's error code: another message was stored in between
NO_MESSAGE = 10037  # no message found (the subject has none)
ATTEMPTS = 20  # tries to store one publication while other nodes store theirs in the same room

Failed = Callable[[Delivery, BaseException], None]


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
        live: Callable[[str], Awaitable[None]],
    ) -> None:
        self._subjects = subjects
        self._options = options
        self._origin = origin
        self._connection = connection
        self._live = live
        self._stream = stream_name(subjects.prefix)
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

    def forget_stream(self) -> None:
        """The server may have lost the stream (reconnected): make sure of it on next use."""
        self._ready = False

    async def _last(self, js: JetStreamContext, room: str) -> tuple[int, Position] | None:
        """The room's last message: its stream sequence and the position it holds."""
        try:
            message = await js.get_last_msg(self._stream, self._subjects.history(room))
        except nats.js.errors.NotFoundError:
            return None
        except nats.js.errors.APIError as exc:
            if exc.err_code == NO_MESSAGE:
                return None
            raise
        assert message.seq is not None and message.data is not None
        return message.seq, position_of(decode(message.data, self._options.max_message_size))

    async def _store(self, js: JetStreamContext, room: str, payload: bytes, after_sequence: int) -> bool:
        """Store ``payload`` as the room's next message; False if another came first."""
        headers = {Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(after_sequence)}
        try:
            await js.publish(self._subjects.history(room), payload, headers=headers)
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                return False
            if exc.err_code is not None and exc.code == 503:
                self._ready = False
            raise
        return True

    async def _position(self, js: JetStreamContext, room: str) -> tuple[int, Position]:
        """The room's last sequence and position, writing its epoch marker if it has none."""
        for _ in range(ATTEMPTS):
            last = await self._last(js, room)
            if last is not None:
                return last
            epoch = new_epoch()
            marker = encode(Envelope(Kind.EPOCH, self._origin, (room, epoch)), self._options.max_message_size)
            await self._store(js, room, marker, 0)
        raise nats.errors.TimeoutError

    # ------------------------------------------------------------------ reading

    async def read(self, room: str, policy: RoomPolicy, after: int | None, limit: int) -> HistoryPage:
        await asyncio.wait_for(self._live(room), self._options.command_timeout)
        js = self._js()
        await self._ensure(js)
        _, position = await self._position(js, room)
        if after is None or after >= position.offset or limit <= 0:
            return HistoryPage(position)
        oldest = max(after, position.offset - policy.history_size)
        publications = await self._after(js, room, position, oldest, policy.history_ttl)
        return HistoryPage(position, tuple(publications[:limit]))

    async def _after(
        self, js: JetStreamContext, room: str, position: Position, after: int, ttl: float
    ) -> list[tuple[int, bytes]]:
        """The room's publications of ``position``'s epoch with offsets above ``after``, up to
        ``position``, younger than ``ttl`` seconds, oldest first."""
        found: list[tuple[int, bytes]] = []
        subscription = await js.subscribe(
            self._subjects.history(room), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        try:
            newest = time.time() - ttl
            while True:
                message = await subscription.next_msg(self._options.command_timeout)
                envelope = decode(message.data, self._options.max_message_size)
                if envelope.kind is Kind.PUBLISHED:
                    place = publication_of(envelope).position
                    offset = place.offset
                    fresh = message.metadata.timestamp.timestamp() >= newest
                    if place.epoch == position.epoch and after < offset <= position.offset and fresh:
                        found.append((offset, envelope.body))
                if message.metadata.num_pending == 0 or (found and found[-1][0] >= position.offset):
                    return found
        finally:
            await subscription.unsubscribe()

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
        try:
            while queue:
                delivery, failed = queue[0]
                try:
                    await self._publish_one(room, delivery)
                except (nats.errors.Error, EnvelopeError, OSError) as exc:
                    failed(delivery, exc)
                queue.popleft()
                self._waiting -= 1
        finally:
            self._waiting -= len(queue)
            del self._queues[room]

    async def _publish_one(self, room: str, delivery: Delivery) -> None:
        js = self._js()
        await self._ensure(js)
        head = Envelope(Kind.PUBLISHED, self._origin, (room, sorted(delivery.exclude)))
        for _ in range(ATTEMPTS):
            sequence, last = await self._position(js, room)
            frame = encode_publication(room, last.epoch, last.offset + 1, delivery.frame)
            payload = encode(
                Envelope(head.kind, head.origin, head.fields, frame), self._options.max_message_size
            )
            if await self._store(js, room, payload, sequence):
                return
        raise nats.errors.TimeoutError

    async def stop(self) -> None:
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
