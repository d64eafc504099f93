"""Lossy send queues: what a member of a ``drop_oldest`` or ``conflate`` room gets while its
connection cannot take more (its output is above the transport's bound) or while it is over the
room's ``max_rate``.

A member that keeps up gets every message at once, as in any room. One that falls behind gets,
when its connection can take more again, what its queue kept: the newest ``max_queue`` messages
(``drop_oldest``), or the latest message of each key in the order the keys first arrived
(``conflate``: ticker prices, cursor positions), preceded by a ``dropped`` frame telling how many
it lost. The queue is bounded, so a slow member costs at most ``max_queue`` frames.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING

from stelar_core.clock import Clock, Timer
from stelar_core.errors import ProtocolError
from stelar_core.protocol import FrameType, decode_frame, dump_json, encode_frame
from stelar_core.room_policies import RoomPolicy

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices
    from stelar_core.hub.session import Session

CONFLATED = "conflated_messages"
DROPPED = "dropped_messages"
QUEUED = "lossy_queued"


def conflation_key(frame: bytes, policy: RoomPolicy) -> Hashable | None:
    """The key a frame is conflated under (its event, and its payload's ``conflate_key`` field),
    or None when the policy does not apply to its event (it is then sent as in any room)."""
    try:
        decoded = decode_frame(frame)
    except ProtocolError:
        return None
    if policy.events is not None and decoded.event not in policy.events:
        return None
    if policy.send_queue != "conflate":
        return decoded.event
    field = None
    if policy.conflate_key is not None and decoded.type is FrameType.JSON:
        try:
            data = decoded.json()
        except ProtocolError:
            data = None
        if isinstance(data, dict):
            value = data.get(policy.conflate_key)
            field = dump_json(value) if value is not None else None
    return (decoded.event, field)


class LossyQueue:
    """One member's queue for one room."""

    __slots__ = ("dropped", "frames", "next_send", "policy", "room", "timer")

    def __init__(self, room: str, policy: RoomPolicy) -> None:
        self.room = room
        self.policy = policy
        self.frames: OrderedDict[Hashable, bytes] = OrderedDict()
        self.dropped = 0  # lost since the last ``dropped`` frame
        self.next_send = 0.0  # when ``max_rate`` lets the next one go (the server's clock)
        self.timer: Timer | None = None


class LossyQueues:
    __slots__ = ("_clock", "_counters", "_outbox", "_sequence")

    def __init__(self, services: HubServices, clock: Clock) -> None:
        self._counters = services.counters
        self._outbox = services.outbox
        self._clock = clock
        self._sequence = 0  # keys of drop_oldest queues: every message its own

    def send(self, session: Session, room: str, policy: RoomPolicy, frame: bytes, key: Hashable) -> None:
        """Deliver ``frame`` to ``session`` now if it can take it, else keep it by the policy."""
        queues = session.lossy
        queue = None if queues is None else queues.get(room)
        if queue is None:
            if policy.max_rate is None and _writable(session):
                self._outbox.send(session, frame)
                return
            if queues is None:
                queues = session.lossy = {}
            queue = queues[room] = LossyQueue(room, policy)
        if not queue.frames and self._can_send(session, queue):
            self._emit(session, queue, frame)
            return
        self._keep(queue, frame, key)
        self.drain(session, queue)

    def _keep(self, queue: LossyQueue, frame: bytes, key: Hashable) -> None:
        frames = queue.frames
        counters = self._counters.other
        if queue.policy.send_queue == "conflate" and key in frames:
            frames[key] = frame  # the newest value, in the place its key first took
            queue.dropped += 1
            counters[CONFLATED] += 1
            return
        if queue.policy.send_queue != "conflate":
            self._sequence += 1
            key = self._sequence
        frames[key] = frame
        counters[QUEUED] += 1
        if len(frames) > queue.policy.max_queue:
            frames.popitem(last=False)
            queue.dropped += 1
            counters[QUEUED] -= 1
            counters[DROPPED] += 1

    def _can_send(self, session: Session, queue: LossyQueue) -> bool:
        return _writable(session) and (queue.policy.max_rate is None or queue.next_send <= self._clock.now())

    def _emit(self, session: Session, queue: LossyQueue, frame: bytes) -> None:
        self._outbox.send(session, frame)
        rate = queue.policy.max_rate
        if rate is not None:
            queue.next_send = max(queue.next_send, self._clock.now()) + 1.0 / rate

    def drain(self, session: Session, queue: LossyQueue) -> None:
        """Send what ``queue`` holds while the connection can take it (and the rate allows)."""
        frames = queue.frames
        while frames and self._can_send(session, queue):
            if queue.dropped:
                body = {"count": queue.dropped, "policy": queue.policy.send_queue}
                self._outbox.send(session, encode_frame(FrameType.DROPPED, queue.room, dump_json(body)))
                queue.dropped = 0
            _, frame = frames.popitem(last=False)
            self._counters.other[QUEUED] -= 1
            self._emit(session, queue, frame)
        if frames and _writable(session) and queue.timer is None:
            # Held back by the rate only: drain again when the next one may go.
            delay = max(0.0, queue.next_send - self._clock.now())
            queue.timer = self._clock.call_later(delay, self._rate_allows, session, queue)
        elif not frames and queue.policy.max_rate is None and session.lossy is not None:
            session.lossy.pop(queue.room, None)

    def _rate_allows(self, session: Session, queue: LossyQueue) -> None:
        queue.timer = None
        if session.lossy is not None and session.lossy.get(queue.room) is queue:
            self.drain(session, queue)

    def resume(self, session: Session) -> None:
        """The connection can take more again: every queue of ``session`` drains."""
        for queue in tuple((session.lossy or {}).values()):
            self.drain(session, queue)

    def forget(self, session: Session) -> None:
        """``session`` closed: its queues are gone."""
        queues = session.lossy
        if queues:
            for queue in queues.values():
                self._counters.other[QUEUED] -= len(queue.frames)
                if queue.timer is not None:
                    queue.timer.cancel()
        session.lossy = None


def _writable(session: Session) -> bool:
    """Whether the connection takes more output now (a transport without the notion always does)."""
    return session.is_open and bool(getattr(session.connection, "writable", True))
