"""Messages out to many: encode once, ask ``on_before_broadcast``, publish through the broker,
and write what the broker delivers to the local recipients."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from stelar_core import tracing
from stelar_core.hub.hooks import Hook
from stelar_core.hub.lossy import LossyQueues, conflation_key
from stelar_core.hub.recovery import Recovery
from stelar_core.hub.rooms import RoomTable
from stelar_core.hub.session import Session, SessionState
from stelar_core.protocol import FrameType, decode_frame, dump_json, encode_frame
from stelar_core.providers import Broker, Delivery

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices

Exclude = str | Iterable[str] | None
_NO_ONE: frozenset[str] = frozenset()


def exclusion(exclude: Exclude) -> frozenset[str]:
    if exclude is None:
        return _NO_ONE
    if isinstance(exclude, str):
        return frozenset((exclude,))
    return frozenset(exclude)


def _check_event(event: str) -> None:
    if not event or not isinstance(event, str):
        raise ValueError(f"event name must be a non-empty string, got {event!r}")


def encode_event(event: str, data: Any) -> bytes:
    _check_event(event)
    return encode_frame(FrameType.JSON, event, dump_json(data))


def encode_binary(event: str, data: bytes) -> bytes:
    _check_event(event)
    return encode_frame(FrameType.BINARY, event, bytes(data))


class Fanout:
    __slots__ = (
        "_config",
        "_counters",
        "_hooks",
        "_lossy",
        "_open",
        "_recovery",
        "_rooms",
        "_taps",
        "_tracer",
        "broker",
    )

    def __init__(
        self,
        services: HubServices,
        broker: Broker,
        open_sessions: Mapping[str, Session],
        rooms: RoomTable,
        recovery: Recovery,
        lossy: LossyQueues,
    ) -> None:
        self.broker = broker
        self._lossy = lossy
        self._open = open_sessions
        self._rooms = rooms
        self._recovery = recovery
        self._config = services.config
        self._counters = services.counters
        self._hooks = services.hooks
        self._taps = services.taps
        self._tracer = services.tracer

    def to_many(
        self, encode: Callable[[str, Any], bytes], event: str, data: Any, room: str | None, exclude: Exclude
    ) -> None:
        """Everyone (``room`` None) or a room's members, minus ``exclude``, unless a hook vetoes."""
        excluded = exclusion(exclude)
        if not self._hooks.allows(Hook.BEFORE_BROADCAST, event=event, data=data, exclude=excluded, room=room):
            return
        if self._taps.listeners:
            self._taps.emit("broadcast" if room is None else "publish", event, room)
        policy = None if room is None else self._config().rooms.for_room(room)
        history = policy if policy is not None and policy.keeps_history else None
        delivery = Delivery(encode(event, data), room=room, exclude=excluded, history=history)
        if self._tracer is None:
            self.broker.publish(delivery)
        else:
            self._traced_publish(self._tracer, delivery, event)

    def to_one(self, client_id: str, frame: bytes) -> None:
        if self._taps.listeners:
            self._taps.emit("send", decode_frame(frame).event, client_id=client_id)
        delivery = Delivery(frame, client_id=client_id)
        if self._tracer is None:
            self.broker.publish(delivery)
        else:
            self._traced_publish(self._tracer, delivery, decode_frame(frame).event)

    def _destination(self, delivery: Delivery) -> str:
        """What a trace names a delivery's recipients by: never a raw room or client id."""
        if delivery.client_id is not None:
            return tracing.ONE_CLIENT
        if delivery.room is None:
            return tracing.EVERYONE
        return self._config().rooms.pattern_of(delivery.room) or tracing.ANY_ROOM

    def _traced_publish(self, tracer: tracing.Tracer, delivery: Delivery, event: str) -> None:
        scope = tracer.send(self._destination(delivery), delivery.room, event)
        try:
            if scope.context is not None:
                delivery = attrs.evolve(delivery, trace=scope.context)
            self.broker.publish(delivery)
        finally:
            scope.end()

    def deliver(self, delivery: Delivery) -> None:
        """The broker's callback: write one encoded frame to every local recipient."""
        if delivery.trace is not None and self._tracer is not None and self._reaches_anyone(delivery):
            self._traced_deliver(self._tracer, delivery, delivery.trace)
        else:
            self._deliver(delivery)

    def _traced_deliver(self, tracer: tracing.Tracer, delivery: Delivery, trace: str) -> None:
        # Another node (or an emitter) wrote the context: trusted no further than its format.
        parent = tracing.checked(trace, self._invalid_context)
        if parent is None:
            self._deliver(delivery)
            return
        scope = tracer.deliver(self._destination(delivery), delivery.room, parent)
        scope.end(self._deliver(delivery))

    def _invalid_context(self) -> None:
        self._counters.other[tracing.INVALID_CONTEXT] += 1

    def _reaches_anyone(self, delivery: Delivery) -> bool:
        """Whether this node has a recipient of ``delivery``: a node with none records no span
        (every node of a cluster gets every broadcast)."""
        if delivery.client_id is not None:
            return delivery.client_id in self._open
        if delivery.room is None:
            return bool(self._open)
        return delivery.room in self._rooms

    def _deliver(self, delivery: Delivery) -> int:
        """Write (or queue, in a lossy room) ``delivery`` to its local recipients; how many (those
        held back for a replay get it later and are not counted)."""
        frame = delivery.frame
        exclude = delivery.exclude
        if delivery.client_id is not None:
            session = self._open.get(delivery.client_id)
            recipients: tuple[Session, ...] = () if session is None else (session,)
        elif delivery.room is None:
            recipients = tuple(self._open.values())
        else:
            room = delivery.room
            recipients = tuple(self._rooms.members(room))
            policy = self._config().rooms.for_room(room)
            if policy is not None and policy.lossy:
                key = conflation_key(frame, policy)
                if key is not None:
                    queued = 0
                    for session in recipients:
                        if session.id not in exclude and session.state is SessionState.OPEN:
                            self._lossy.send(session, room, policy, frame, key)
                            queued += 1
                    return queued
            held = self._recovery.held
            if held and delivery.room in held:
                # Members still recovering get it after their replay.
                holding = held[delivery.room]
                for session in recipients:
                    if session.id in holding and session.id not in exclude:
                        self._recovery.hold(holding[session.id], delivery)
                exclude = exclude.union(holding)  # (a frozenset: "| keys()" gives a set)
        sent = 0
        for session in recipients:
            if session.id not in exclude and session.state is SessionState.OPEN:
                session.connection.send(frame)
                sent += 1
        self._counters.messages_sent += sent
        self._counters.bytes_sent += sent * len(frame)
        return sent
