"""Taps: listeners that see what goes through a node (events and requests from clients, sends,
connections, joins), for an operator's live view (the admin page's tail).

A tap costs nothing but one check where nobody listens: each place calls ``emit`` only when
``listeners`` is not empty, and the record is made only then. A listener must be quick (it runs
in the hub's path); one that raises is logged and kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from stelar_core.values import Tapped

Tap = Callable[[Tapped], None]


class Taps:
    __slots__ = ("_log", "listeners")

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.listeners: tuple[Tap, ...] = ()

    def add(self, listener: Tap) -> Callable[[], None]:
        """Listen from now on; returns the call that stops it."""
        self.listeners = (*self.listeners, listener)

        def remove() -> None:
            self.listeners = tuple(tap for tap in self.listeners if tap is not listener)

        return remove

    def emit(
        self, kind: str, event: str | None = None, room: str | None = None, client_id: str | None = None
    ) -> None:
        record = Tapped(kind, event, room, client_id)
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:
                self._log.exception("a tap raised")
