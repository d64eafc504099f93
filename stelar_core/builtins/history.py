"""Room history in this process's memory: the store of the ``local`` broker (and of the in-process
bus that joins several hubs in tests)."""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable

import attrs

from stelar_core.protocol.publications import Position, encode_publication
from stelar_core.providers import Delivery, HistoryPage
from stelar_core.room_policies import RoomPolicy


def new_epoch() -> str:
    """A new life of a room's stream: 8 random hex digits, so an old position cannot match."""
    return secrets.token_hex(4)


class _Stream:
    __slots__ = ("entries", "epoch", "last_publish", "offset")

    def __init__(self, now: float) -> None:
        self.epoch = new_epoch()
        self.offset = 0
        self.entries: deque[tuple[int, bytes]] = deque()
        self.last_publish = now


class MemoryHistory:
    """Each room's stream: an epoch, the last offset given, and its last ``history_size``
    publications, dropped together ``history_ttl`` seconds after the last publication (the
    offsets go on). At most ``max_rooms`` streams; past it the least recently used one is
    forgotten, so that room starts a new epoch."""

    def __init__(self, max_rooms: int, now: Callable[[], float]) -> None:
        self.max_rooms = max_rooms
        self.now = now
        self._streams: OrderedDict[str, _Stream] = OrderedDict()

    def __len__(self) -> int:
        return len(self._streams)

    def _stream(self, room: str, policy: RoomPolicy) -> _Stream:
        now = self.now()
        stream = self._streams.get(room)
        if stream is None:
            if len(self._streams) >= self.max_rooms:
                self._streams.popitem(last=False)
            stream = self._streams[room] = _Stream(now)
        else:
            self._streams.move_to_end(room)
            if stream.entries and now - stream.last_publish > policy.history_ttl:
                stream.entries.clear()
        return stream

    def publish(self, delivery: Delivery) -> Delivery:
        """Give ``delivery`` (to a room with ``history``) its position and keep it."""
        assert delivery.room is not None and delivery.history is not None
        stream = self._stream(delivery.room, delivery.history)
        stream.offset += 1
        stream.last_publish = self.now()
        frame = encode_publication(delivery.room, stream.epoch, stream.offset, delivery.frame)
        entries = stream.entries
        entries.append((stream.offset, frame))
        while len(entries) > delivery.history.history_size:
            entries.popleft()
        return attrs.evolve(delivery, frame=frame, position=Position(stream.epoch, stream.offset))

    def read(self, room: str, policy: RoomPolicy, after: int | None, limit: int) -> HistoryPage:
        stream = self._stream(room, policy)
        position = Position(stream.epoch, stream.offset)
        if after is None or after >= stream.offset:
            return HistoryPage(position)
        entries = stream.entries
        # Offsets in a stream are consecutive, so the first one wanted is found by arithmetic.
        start = max(0, after + 1 - entries[0][0]) if entries else 0
        return HistoryPage(position, tuple(itertools.islice(entries, start, start + limit)))
