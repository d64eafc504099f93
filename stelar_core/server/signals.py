"""SIGINT/SIGTERM for any number of servers on one event loop.

An event loop holds one handler per signal, so each server installing its own would remove the
others' and restore the wrong "previous" handler. One relay per loop installs the handlers when
the first subscriber arrives, calls every subscriber on a signal, and puts back the handlers
that were there before when the last one leaves.
"""

from __future__ import annotations

import asyncio
import signal
import weakref
from collections.abc import Callable
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Callback = Callable[[], None]
_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SignalRelay] = weakref.WeakKeyDictionary()


class _SignalRelay:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._callbacks: list[Callback] = []
        self._previous: dict[int, Any] = {}

    def add(self, callback: Callback) -> None:
        if not self._callbacks:
            for sig in SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
                self._loop.add_signal_handler(sig, self._fire)
        self._callbacks.append(callback)

    def remove(self, callback: Callback) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)
        if not self._callbacks and self._previous:
            for sig, previous in self._previous.items():
                self._loop.remove_signal_handler(sig)
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
            self._previous.clear()

    def _fire(self) -> None:
        for callback in tuple(self._callbacks):
            callback()


def on_shutdown_signal(callback: Callback) -> Callable[[], None]:
    """Call ``callback`` on SIGINT/SIGTERM; returns the function that unsubscribes it."""
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None:
        relay = _relays[loop] = _SignalRelay(loop)
    relay.add(callback)
    return lambda: relay.remove(callback)
