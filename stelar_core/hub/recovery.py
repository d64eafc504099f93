"""Joining a room that keeps history: its position, and the replay of what a client missed.

A client joins with the last position it saw (``since``); the hub reads the room's history after
that offset and, when every missed publication is there, writes them in order, then answers the
join with ``recovered: true``; otherwise it answers ``recovered: false`` with the reason and
replays nothing (the application reloads its state). A plain join is answered with the room's
position, so that even a client that never received anything can recover later.

When the store answers later (Redis), publications delivered meanwhile to the joining session are
held and written after the replay, those already replayed left out: no gap, no duplicate.
"""

from __future__ import annotations

import base64
import enum
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from stelar_core.errors import ProtocolError
from stelar_core.hub.session import Session
from stelar_core.protocol import ErrorCode, Frame, FrameType, decode_frame, dump_json, encode_frame
from stelar_core.protocol.publications import Position, decode_publication, read_history_request
from stelar_core.providers import Delivery, HistoryPage, HistoryStore
from stelar_core.room_policies import RoomPolicy

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices

RECOVERED = "recovered"


class NotRecovered(enum.StrEnum):
    """Why a recovery replayed nothing (the ``reason`` of ``recovered: false``)."""

    NO_HISTORY = "no_history"  # the room keeps no history
    EPOCH_CHANGED = "epoch_changed"  # the room's stream was lost (a restart, an eviction)
    HISTORY_LOST = "history_lost"  # missed publications are no longer kept (size, ttl)
    TOO_MANY = "too_many"  # more missed than max_recovery_replay
    INVALID_POSITION = "invalid_position"  # an offset the room has not reached
    OVERFLOW = "overflow"  # more arrived while reading than a recovery holds
    UNAVAILABLE = "unavailable"  # the history store could not be read


@attrs.define(eq=False)
class Holding:
    """Publications of a room held for one join of a session while its history is read (each
    join its own: compared by identity)."""

    deliveries: list[Delivery] = attrs.Factory(list)
    overflowed: bool = False  # more came than a recovery holds: the join says overflow


# The holdings of the joins being recovered, by room, then by session id.
Held = dict[str, dict[str, Holding]]


class Recovery:
    __slots__ = ("_config", "_counters", "_log", "_outbox", "_room_ready", "_store", "held")

    def __init__(
        self,
        services: HubServices,
        store: Callable[[], HistoryStore | None],
        room_ready: Callable[[str], Awaitable[None] | None] | None = None,
    ) -> None:
        self._config = services.config
        self._counters = services.counters
        self._outbox = services.outbox
        self._log = services.log
        self._store = store
        self._room_ready = room_ready
        self.held: Held = {}

    def joined(
        self, session: Session, room: str, policy: RoomPolicy | None, since: Position | None
    ) -> Awaitable[None] | None:
        """``session`` is in ``room`` now: answer the join (and replay, for a ``since``)."""
        store = self._store()
        if policy is None or not policy.keeps_history or store is None:
            extra = {} if since is None else self._not_recovered(NotRecovered.NO_HISTORY)
            # No join window: the answer waits until this node receives the room (a broker that
            # subscribes per room, for its first member here), so that whatever is published
            # after the client's join_room returned reaches it. (A history read waits so too.)
            ready = None if self._room_ready is None else self._room_ready(room)
            if ready is not None:
                return self._answer_when(ready, session, room, extra)
            self._answer(session, room, None, extra)
            return None
        limit = self._config().max_recovery_replay
        page = store.read(room, policy, None if since is None else since.offset, limit)
        if not inspect.isawaitable(page):
            self._finish(session, room, since, page, ())
            return None
        # A join of the same session still reading (its client came back on a new connection
        # and joined again) is superseded: this one answers, from its own read.
        holding = self.held.setdefault(room, {})[session.id] = Holding()
        return self._finish_later(session, room, since, page, holding)

    async def _answer_when(
        self, ready: Awaitable[None], session: Session, room: str, extra: dict[str, Any]
    ) -> None:
        await ready
        if session.is_open and room in session.rooms:
            self._answer(session, room, None, extra)

    async def _finish_later(
        self,
        session: Session,
        room: str,
        since: Position | None,
        page: Awaitable[HistoryPage],
        holding: Holding,
    ) -> None:
        try:
            read: HistoryPage | None = await page
        except Exception as exc:  # the store's own failure: the client is told, the server goes on
            self._log.warning("history of room %r could not be read: %s", room, exc)
            read = None
        finally:
            holdings = self.held.get(room, {})
            superseded = holdings.get(session.id) is not holding
            if not superseded:
                del holdings[session.id]
                if not holdings:
                    self.held.pop(room, None)
        if superseded or not session.is_open or room not in session.rooms:
            return
        if read is None or holding.overflowed:
            reason = NotRecovered.UNAVAILABLE if read is None else NotRecovered.OVERFLOW
            self._answer(session, room, None, self._not_recovered(reason))
            return
        self._finish(session, room, since, read, holding.deliveries)

    def history(self, session: Session, request: Frame) -> Awaitable[None] | None:
        """Answer a ``$history`` request: a page of a room's history, for a member of the room."""
        config = self._config()
        try:
            room, since, limit = read_history_request(request.json(), config.max_recovery_replay)
        except ProtocolError as exc:
            self._outbox.invalid(session, exc.code, exc.reason, request)
            return None
        policy = config.rooms.for_room(room)
        store = self._store()
        if room not in session.rooms:
            self._outbox.reply_error(session, request, ErrorCode.NOT_IN_ROOM, f"not in room {room!r}")
            return None
        if policy is None or not policy.keeps_history or store is None:
            self._outbox.reply_error(
                session, request, ErrorCode.NO_HISTORY, f"room {room!r} keeps no history"
            )
            return None
        page = store.read(room, policy, 0 if since is None else since, limit)
        if inspect.isawaitable(page):
            return self._history_later(session, request, page)
        self._outbox.answer(session, request, dump_json(_history_answer(page)))
        return None

    async def _history_later(self, session: Session, request: Frame, page: Awaitable[HistoryPage]) -> None:
        try:
            read = await page
        except Exception as exc:
            self._outbox.reply_error(session, request, ErrorCode.NO_HISTORY, f"history unavailable: {exc}")
            return
        self._outbox.answer(session, request, dump_json(_history_answer(read)))

    def hold(self, holding: Holding, delivery: Delivery) -> None:
        """Keep ``delivery`` until the join's recovery is done (at most the replay cap; past it
        the join says overflow, and nothing more is kept for it)."""
        if holding.overflowed:
            return
        if len(holding.deliveries) >= self._config().max_recovery_replay:
            holding.overflowed = True
            holding.deliveries.clear()
            return
        holding.deliveries.append(delivery)

    def _finish(
        self,
        session: Session,
        room: str,
        since: Position | None,
        page: HistoryPage,
        held: tuple[Delivery, ...] | list[Delivery],
    ) -> None:
        position = page.position
        if since is None:
            extra: dict[str, Any] = {}
        else:
            reason = self._check(since, page)
            if reason is None:
                for _, frame in page.publications:
                    self._outbox.send(session, frame)
                replayed = len(page.publications)
                self._counters.recoveries[RECOVERED] += 1
                self._counters.other["replayed_messages"] += replayed
                extra = {"recovered": True, "replayed": replayed}
            else:
                extra = self._not_recovered(reason)
        self._answer(session, room, position, extra)
        for delivery in held:
            delivered = delivery.position
            if delivered is None or delivered.epoch != position.epoch or delivered.offset > position.offset:
                self._outbox.send(session, delivery.frame)

    def _check(self, since: Position, page: HistoryPage) -> NotRecovered | None:
        position = page.position
        if since.epoch != position.epoch:
            return NotRecovered.EPOCH_CHANGED
        missed = position.offset - since.offset
        if missed < 0:
            return NotRecovered.INVALID_POSITION
        if missed > self._config().max_recovery_replay:
            return NotRecovered.TOO_MANY
        publications = page.publications
        if len(publications) != missed or (missed and publications[0][0] != since.offset + 1):
            return NotRecovered.HISTORY_LOST
        return None

    def _not_recovered(self, reason: NotRecovered) -> dict[str, Any]:
        self._counters.recoveries[reason.value] += 1
        return {"recovered": False, "reason": reason.value}

    def _answer(self, session: Session, room: str, position: Position | None, extra: dict[str, Any]) -> None:
        body: dict[str, Any] = {"ok": True}
        if position is not None:
            body["position"] = position.to_json()
        body.update(extra)
        self._outbox.send(session, encode_frame(FrameType.JOIN, room, dump_json(body)))


def _history_answer(page: HistoryPage) -> dict[str, Any]:
    return {"ok": history_json(page)}


def history_json(page: HistoryPage) -> dict[str, Any]:
    """``{"position", "publications": [{"offset", "event", "data" | "binary"}]}``; binary
    payloads as base64."""
    publications = []
    for offset, frame in page.publications:
        inner = decode_publication(decode_frame(frame)).frame
        entry: dict[str, Any] = {"offset": offset, "event": inner.event}
        if inner.type is FrameType.BINARY:
            entry["binary"] = base64.b64encode(inner.payload).decode()
        else:
            entry["data"] = inner.json()
        publications.append(entry)
    return {"position": page.position.to_json(), "publications": publications}
