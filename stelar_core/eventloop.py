"""Which event loop stelar runs on: uvloop when it is installed (stelar-core's ``uvloop`` extra),
asyncio's own otherwise, or the one named.

Only code that creates the loop chooses it: ``stelar serve``, :meth:`StelarServer.run` and
:func:`run`. A server started inside an application's loop runs on that loop, whichever it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from stelar_core.errors import ConfigError

T = TypeVar("T")

EVENT_LOOPS = ("auto", "uvloop", "asyncio")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(event_loop: str = "auto") -> LoopFactory:
    """The factory of the loop named by ``event_loop``: "auto" (uvloop if importable),
    "uvloop" (an error naming the extra when it is missing) or "asyncio"."""
    if event_loop not in EVENT_LOOPS:
        raise ConfigError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}; got {event_loop!r}")
    if event_loop == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if event_loop == "uvloop":
            raise ConfigError(
                "event_loop 'uvloop' needs uvloop, which is not installed: pip install 'stelar-core[uvloop]'"
            ) from None
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio" (or the module of another loop), for logs and stats."""
    module = type(loop).__module__.split(".")[0]
    return "asyncio" if module == "asyncio" else module


def run(main: Coroutine[Any, Any, T], *, event_loop: str = "auto") -> T:
    """``asyncio.run(main)`` on the loop ``event_loop`` names."""
    try:
        factory = loop_factory(event_loop)
    except ConfigError:
        main.close()  # never started: no "was never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
