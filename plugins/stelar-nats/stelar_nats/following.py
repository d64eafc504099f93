"""A node receiving the stored publications of its rooms with history: one JetStream ordered
consumer per room that has local members, so that the node delivers exactly what JetStream
stored, in the order it stored it.

Not a plain subscription to ``P.room.<R>.h``: a publication JetStream refuses (another node's
came first, see history.py) is still an ordinary NATS message on that subject, and every plain
subscriber would receive it, at an offset that belongs to someone else's.

A room is followed from the sequence after the position its first join read, so nothing stored
after that position is missed; later joins of the room on this node find it followed already.
After a reconnect every room is followed again from the last sequence it delivered (from the
start when the server lost the stream and its sequences began again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from stelar_nats.failures import NATS_FAILURES_OR_TIMEOUT


class Following:
    def __init__(
        self, stream: str, history_subject: Callable[[str], str], received: Callable[[str, Msg], None]
    ) -> None:
        self._stream = stream
        self._subject = history_subject
        self._received = received
        self._subscriptions: dict[str, asyncio.Task[JetStreamContext.PushSubscription]] = {}
        self._last: dict[str, int] = {}  # the last stream sequence delivered, by room followed
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._subscriptions)

    def __contains__(self, room: object) -> bool:
        return room in self._subscriptions

    async def follow(self, js: JetStreamContext, room: str, after_sequence: int) -> None:
        """Return once ``room``'s publications stored after ``after_sequence`` reach this node
        (at once when it follows the room already)."""
        task = self._subscriptions.get(room)
        if task is None:
            self._last[room] = after_sequence
            task = asyncio.ensure_future(self._subscribe(js, room, after_sequence))
            self._subscriptions[room] = task
        try:
            await asyncio.shield(task)
        except BaseException:
            if self._subscriptions.get(room) is task and task.done():
                self._forget(room)
            raise

    async def _subscribe(
        self, js: JetStreamContext, room: str, after_sequence: int
    ) -> JetStreamContext.PushSubscription:
        async def deliver(message: Msg) -> None:
            if message.metadata.sequence.stream <= self._last.get(room, 0):
                return  # (already delivered by the subscription this one replaced)
            self._last[room] = message.metadata.sequence.stream
            self._received(room, message)

        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_sequence + 1
        )
        return await js.subscribe(
            self._subject(room), stream=self._stream, cb=deliver, ordered_consumer=True, config=config
        )

    def release(self, room: str) -> None:
        """The room's last local member left: stop receiving it (in the background)."""
        task = self._forget(room)
        if task is not None:
            self._close(task)

    async def follow_again(self, js: JetStreamContext, stream_last_sequence: int) -> None:
        """After a reconnect: every room from where it stopped, or from the start of a stream
        that began again (its last sequence behind what was delivered)."""
        for room, task in list(self._subscriptions.items()):
            last = self._last.get(room, 0)
            start = last if stream_last_sequence >= last else 0
            self._close(task)
            del self._subscriptions[room]
            with contextlib.suppress(*NATS_FAILURES_OR_TIMEOUT):
                await self.follow(js, room, start)

    def _forget(self, room: str) -> asyncio.Task[JetStreamContext.PushSubscription] | None:
        self._last.pop(room, None)
        return self._subscriptions.pop(room, None)

    def _close(self, task: asyncio.Task[JetStreamContext.PushSubscription]) -> None:
        closing = asyncio.ensure_future(self._unsubscribe(task))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    @staticmethod
    async def _unsubscribe(task: asyncio.Task[JetStreamContext.PushSubscription]) -> None:
        with contextlib.suppress(*NATS_FAILURES_OR_TIMEOUT, asyncio.CancelledError):
            subscription = await task
            await subscription.unsubscribe()

    async def stop(self) -> None:
        for room in list(self._subscriptions):
            self.release(room)
        await asyncio.gather(*self._closing, return_exceptions=True)
