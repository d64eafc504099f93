"""The last publications of a room this node follows, kept as they arrive, so that the rejoins of
a recovery storm are answered from memory rather than each reading JetStream (sans-I/O).

``Recent`` holds every publication of one epoch after ``start`` up to the newest, at most
``size`` of them: a gap (a publication whose offset does not follow) or a new epoch starts it
again from there. A read it cannot answer whole (older than it holds, newer than it has
received yet, another epoch) goes to JetStream.
"""

from __future__ import annotations

from collections import deque

from stelar_core.plugin_api import Position


class Recent:
    __slots__ = ("_kept", "start")

    def __init__(self, start: Position, size: int) -> None:
        self.start = start  # every publication after this one is kept (up to size)
        self._kept: deque[tuple[int, float, bytes]] = deque(maxlen=max(size, 1))

    @property
    def newest(self) -> int:
        return self._kept[-1][0] if self._kept else self.start.offset

    def add(self, position: Position, stored_at: float, frame: bytes) -> None:
        """A publication the room's consumer delivered."""
        if position.epoch != self.start.epoch or position.offset != self.newest + 1:
            # A gap or another epoch: what is kept no longer runs up to it.
            self._kept.clear()
            self.start = Position(position.epoch, position.offset - 1)
        self._kept.append((position.offset, stored_at, frame))

    def extend_back(self, epoch: str, read: list[tuple[int, float, bytes]]) -> None:
        """Publications of ``epoch`` read from JetStream, oldest first: those up to ``start``
        are kept before the others when they join up with them (the next readers find them)."""
        earlier = [item for item in read if item[0] <= self.start.offset]
        offsets = [offset for offset, _, _ in earlier]
        if (
            epoch != self.start.epoch
            or not offsets
            or offsets != list(range(offsets[0], self.start.offset + 1))
        ):
            return
        size = self._kept.maxlen or 1
        kept = [*earlier, *self._kept][-size:]
        self._kept = deque(kept, maxlen=size)
        self.start = Position(epoch, kept[0][0] - 1)

    def began(self, epoch: str) -> None:
        """The room's history began again (an epoch marker: offset 0)."""
        self._kept.clear()
        self.start = Position(epoch, 0)

    def after(self, after: int, position: Position, stored_since: float) -> list[tuple[int, bytes]] | None:
        """The publications after offset ``after`` up to ``position``, stored at or after
        ``stored_since``; None when they are not all here."""
        first = self._kept[0][0] if self._kept else self.newest + 1
        if position.epoch != self.start.epoch or position.offset > self.newest or after + 1 < first:
            return None
        return [
            (offset, frame)
            for offset, stored_at, frame in self._kept
            if after < offset <= position.offset and stored_at >= stored_since
        ]
