"""The admin page's live tail: what goes through this node, sampled, in a bounded buffer.

It listens (``server.tap``) only while a page reads it: the first read starts it, and the first
record after nobody read for ``IDLE_SECONDS`` stops it. Between reads, records go into a ring
buffer of ``tail_size``; ``tail_sample`` keeps one record in 1/sample
(deterministically: a fraction of credit per record), so that on a busy server the tail costs a
call and an addition for most messages.
"""

from __future__ import annotations

import fnmatch
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from stelar_core.plugin_api import ServerView, Tapped

IDLE_SECONDS = 30.0
MAX_RETURNED = 200


@attrs.frozen(slots=True)
class TailFilter:
    """Patterns (``fnmatch``: ``chat:*``) a record must match; None matches anything."""

    room: str | None = None
    event: str | None = None
    client: str | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        return all(
            pattern is None or (record[field] is not None and fnmatch.fnmatchcase(record[field], pattern))
            for field, pattern in (("room", self.room), ("event", self.event), ("client", self.client))
        )


class Tail:
    def __init__(
        self,
        server: ServerView,
        size: Callable[[], int],
        sample: Callable[[], float],
        clock: Callable[[], float],
    ) -> None:
        self._server = server
        self._size = size
        self._sample = sample
        self._clock = clock
        self._records: deque[dict[str, Any]] = deque(maxlen=size())
        self._seq = 0
        self._credit = 0.0
        self._stop: Callable[[], None] | None = None
        self._last_read = 0.0

    @property
    def listening(self) -> bool:
        return self._stop is not None

    def read(self, after: int, selected: TailFilter) -> dict[str, Any]:
        """The records after sequence number ``after`` that match, oldest first (at most
        ``MAX_RETURNED``), and the last sequence number, to ask from next time."""
        self._last_read = self._clock()
        if self._stop is None:
            self._stop = self._server.tap(self._tapped)
        if self._records.maxlen != self._size():
            self._records = deque(self._records, maxlen=self._size())
        found = [record for record in self._records if record["seq"] > after and selected.matches(record)]
        return {"events": found[-MAX_RETURNED:], "last": self._seq, "sample": self._sample()}

    def close(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def _tapped(self, tapped: Tapped) -> None:
        if self._clock() - self._last_read > IDLE_SECONDS:
            self.close()  # nobody reads: stop listening until the next read
            return
        self._credit += self._sample()
        if self._credit < 1.0:
            return
        self._credit -= 1.0
        self._seq += 1
        self._records.append(
            {
                "seq": self._seq,
                "at": time.time(),
                "kind": tapped.kind,
                "event": tapped.event,
                "room": tapped.room,
                "client": tapped.client_id,
            }
        )
