"""The client's rooms: joining and leaving with the server's answer awaited, and the rooms
joined again after every reconnection, from the last position seen in each room with history
(the server replays what was missed and says whether it could: the ``recovered`` and
``not_recovered`` events)."""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from stelar_core.client.channel import ClientServices
from stelar_core.clock import wait_for
from stelar_core.errors import AckError, AckTimeout, NotConnected, RemoteError
from stelar_core.protocol import FrameType
from stelar_core.protocol.client import RoomAnswered
from stelar_core.protocol.publications import Position


@attrs.frozen(slots=True)
class RoomJoin:
    """The answer to ``join_room``: true when accepted. For a room with history, ``position``
    is where it stands now; ``recovered`` (None for a first join) says whether the publications
    missed since the last position seen were all replayed (``replayed``), or why not (``reason``)."""

    room: str
    ok: bool
    position: Position | None = None
    recovered: bool | None = None
    reason: str | None = None
    replayed: int = 0
    error: AckError | None = None

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def of(cls, answer: RoomAnswered) -> RoomJoin:
        return cls(
            answer.room,
            answer.ok,
            answer.position,
            answer.recovered,
            answer.reason,
            answer.replayed,
            answer.error,
        )


@attrs.frozen(slots=True)
class HistoryEntry:
    """One publication of a room's history: its offset, event and data (``bytes`` if binary)."""

    offset: int
    event: str
    data: Any
    binary: bool = False


@attrs.frozen(slots=True)
class RoomHistory:
    """A page of a room's history (``client.history(room)``): the room's position now, and the
    publications after the offset asked for, oldest first."""

    position: Position
    publications: tuple[HistoryEntry, ...]

    @classmethod
    def of(cls, answer: Any) -> RoomHistory:
        entries = []
        for item in answer["publications"]:
            if "binary" in item:
                entries.append(
                    HistoryEntry(item["offset"], item["event"], base64.b64decode(item["binary"]), True)
                )
            else:
                entries.append(HistoryEntry(item["offset"], item["event"], item.get("data")))
        position = answer["position"]
        return cls(Position(position["epoch"], position["offset"]), tuple(entries))


class ClientRooms:
    __slots__ = ("_answers", "_channel", "_clock", "_notify", "_options", "_record_error", "joined")

    def __init__(self, services: ClientServices, notify: Callable[..., None]) -> None:
        self._channel = services.channel
        self._options = services.options
        self._clock = services.clock
        self._record_error = services.record_error
        self._notify = notify
        self.joined: set[str] = set()
        # Who waits for the answer to a join or leave of a room, oldest first.
        self._answers: dict[tuple[FrameType, str], deque[asyncio.Future[Any]]] = {}

    def rejoin(self, skip: frozenset[str] = frozenset()) -> None:
        """On a new connection: join again every room joined or waiting to be, but those a
        resumed session is back in (``skip``)."""
        waiting = {
            room for (kind, room), waiters in self._answers.items() if kind is FrameType.JOIN and waiters
        }
        for room in sorted((self.joined - skip) | waiting):
            self._channel.session.rejoin(room)

    def answered(self, answer: RoomAnswered) -> None:
        key = (answer.kind, answer.room)
        if answer.kind is FrameType.JOIN:
            if answer.ok:
                self.joined.add(answer.room)
            else:
                self.joined.discard(answer.room)
        if answer.recovered is not None:
            details = {"room": answer.room, "position": answer.position}
            if answer.recovered:
                self._notify("recovered", {**details, "replayed": answer.replayed})
            else:
                self._notify("not_recovered", {**details, "reason": answer.reason})
        waiters = self._answers.get(key)
        if waiters:
            waiters.popleft().set_result(RoomJoin.of(answer) if answer.kind is FrameType.JOIN else answer.ok)
            if not waiters:
                del self._answers[key]
        elif answer.kind is FrameType.JOIN and answer.error is not None:
            self._record_error(RemoteError(answer.error.code, f"rejoining {answer.room!r} refused"), "rejoin")

    async def join(self, room: str) -> RoomJoin:
        """Offline, the join is sent (and answered) when the connection is back."""
        joined: RoomJoin = await self._ask(FrameType.JOIN, room, send=self._channel.connected)
        return joined

    async def leave(self, room: str) -> bool:
        if not self._channel.connected:
            self.joined.discard(room)
            return True
        left: bool = await self._ask(FrameType.LEAVE, room, send=True)
        if left:
            self.joined.discard(room)
        return left

    async def _ask(self, kind: FrameType, room: str, *, send: bool) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiters = self._answers.setdefault((kind, room), deque())
        waiters.append(future)
        if send:
            if kind is FrameType.JOIN:
                self._channel.session.rejoin(room)
            else:
                self._channel.session.leave(room)
            self._channel.transmit()
        timeout = self._options().ack_timeout
        try:
            return await wait_for(
                future,
                timeout,
                self._clock,
                lambda: AckTimeout(f"no answer to {kind.name.lower()} {room!r} within {timeout}s"),
            )
        except AckTimeout:
            if future in waiters:
                waiters.remove(future)
            raise

    def fail_waiting(self, reason: str) -> None:
        """Nobody will answer: every waiting join or leave raises ``NotConnected(reason)``."""
        for waiters in self._answers.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(NotConnected(reason))
        self._answers.clear()
