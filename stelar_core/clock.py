"""The time the hub reads: an injectable clock, so deadlines are tested without waiting.

Heartbeat sweeps, connect timeouts and ACK timeouts read ``now()`` and schedule with
``call_later``. :class:`LoopClock` is the real one; ``stelar_core.testing.FakeClock`` is a clock a
test moves forward by hand (``clock.advance(30)``), as h11 and websockets pass ``now`` in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable


class Timer(Protocol):
    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run ``callback(*args)`` once, ``delay`` seconds from now; the timer can be cancelled."""


class LoopClock:
    """Real time: ``time.monotonic`` and the running event loop's timers."""

    __slots__ = ()

    # The function itself, not a method calling it: ``now()`` runs for every frame received.
    now = staticmethod(time.monotonic)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback, *args)


REAL_CLOCK = LoopClock()

T = TypeVar("T")


async def wait_for(
    future: asyncio.Future[T], timeout: float, clock: Clock, expired: Callable[[], BaseException]
) -> T:
    """Await ``future``; after ``timeout`` seconds on ``clock`` it fails with ``expired()``.
    (``asyncio.wait_for`` on the clock a test can move.)"""
    timer = clock.call_later(timeout, _expire, future, expired)
    try:
        return await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[Any], expired: Callable[[], BaseException]) -> None:
    if not future.done():
        future.set_exception(expired())
