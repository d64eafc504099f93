"""A clock that moves only when a test says so: ``FakeClock().advance(seconds)`` runs, in order,
every timer that falls due. Give it to a server (``StelarServer(clock=clock)``) to test
heartbeats, connect and ACK timeouts without waiting."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any


class FakeTimer:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeTimer:
        timer = FakeTimer(self._now + delay, callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        self._wake_waiters()
        return timer

    async def wait_for_timers(self, count: int) -> None:
        """Return once at least ``count`` timers are pending: the code under test has scheduled
        what the test is about to make fall due (e.g. a new connection's connect timeout)."""
        if self.pending >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        await future

    def _wake_waiters(self) -> None:
        pending = self.pending
        for count, future in [w for w in self._waiters if w[0] <= pending]:
            self._waiters.remove((count, future))
            if not future.done():
                future.set_result(None)

    @property
    def pending(self) -> int:
        """Timers scheduled and not cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward, running each timer due on the way at its own time."""
        until = self._now + seconds
        while self._timers and self._timers[0][0] <= until:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = when
            timer.callback(*timer.args)
        self._now = until
