"""The user's handlers, by kind, and running a chain of them.

The registry is changed only through its methods (``StelarServer.on``/``off``/... call them);
what the hub reads are tuples, so a handler list cannot be changed behind its back.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from stelar_core.hub.context import Context
from stelar_core.hub.hooks import Hook, HookRunner
from stelar_core.hub.middleware import Middleware
from stelar_core.hub.stats import Counters

Handler = Callable[[Context], Any]


@attrs.frozen(slots=True)
class AckHandler:
    """The one handler answering requests of a name. ``concurrent``: requests of one client run
    side by side (bounded by ``max_concurrent_requests``) instead of one after the other."""

    function: Handler
    concurrent: bool = False


class HandlerRegistry:
    __slots__ = ("_acks", "_any", "_connection", "_disconnect", "_events", "_middleware")

    def __init__(self) -> None:
        self._events: dict[str, tuple[Handler, ...]] = {}
        self._any: tuple[Handler, ...] = ()
        self._acks: dict[str, AckHandler] = {}
        self._connection: tuple[Handler, ...] = ()
        self._disconnect: tuple[Handler, ...] = ()
        self._middleware: tuple[Middleware, ...] = ()

    # ------------------------------------------------------------------ changes

    def add_event(self, event: str, handler: Handler) -> None:
        self._events[event] = (*self._events.get(event, ()), handler)

    def remove_event(self, event: str, handler: Handler | None) -> None:
        """Remove one handler of ``event`` (every registration of it), or all of them."""
        left = () if handler is None else tuple(h for h in self._events.get(event, ()) if h != handler)
        if left:
            self._events[event] = left
        else:
            self._events.pop(event, None)

    def add_any(self, handler: Handler) -> None:
        self._any = (*self._any, handler)

    def set_ack(self, name: str, handler: Handler, *, concurrent: bool) -> None:
        self._acks[name] = AckHandler(handler, concurrent)

    def add_connection(self, handler: Handler) -> None:
        self._connection = (*self._connection, handler)

    def add_disconnect(self, handler: Handler) -> None:
        self._disconnect = (*self._disconnect, handler)

    def add_middleware(self, middleware: Middleware) -> None:
        self._middleware = (*self._middleware, middleware)

    # ------------------------------------------------------------------ reads

    def events(self) -> tuple[str, ...]:
        return tuple(self._events)

    def for_event(self, event: str) -> tuple[Handler, ...]:
        """The event's own handlers, then the catch-all ones."""
        own = self._events.get(event, ())
        return own + self._any if own and self._any else own or self._any

    def ack(self, name: str) -> AckHandler | None:
        return self._acks.get(name)

    @property
    def connection(self) -> tuple[Handler, ...]:
        return self._connection

    @property
    def disconnect(self) -> tuple[Handler, ...]:
        return self._disconnect

    @property
    def middleware(self) -> tuple[Middleware, ...]:
        return self._middleware


class HandlerRunner:
    """Runs handler chains: synchronous ones inline, the rest of the chain after the first
    that returns an awaitable. A handler that raises is logged, counted and reported to
    ``on_handler_error``; the chain goes on."""

    __slots__ = ("_counters", "_hooks", "_log")

    def __init__(self, counters: Counters, hooks: HookRunner, log: logging.Logger) -> None:
        self._counters = counters
        self._hooks = hooks
        self._log = log

    def run(self, handlers: Sequence[Handler], ctx: Context) -> Awaitable[None] | None:
        for index, handler in enumerate(handlers):
            try:
                result = handler(ctx)
            except Exception:
                self.failed(handler, ctx)
                continue
            if inspect.isawaitable(result):
                return self._finish(result, handler, handlers[index + 1 :], ctx)
        return None

    async def _finish(
        self, first: Awaitable[Any], first_handler: Handler, rest: Sequence[Handler], ctx: Context
    ) -> None:
        try:
            await first
        except Exception:
            self.failed(first_handler, ctx)
        for handler in rest:
            try:
                result = handler(ctx)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.failed(handler, ctx)

    def failed(self, handler: object, ctx: Context) -> None:
        """Called inside ``except``: log, count and report the exception being handled."""
        self._counters.handler_errors += 1
        name = getattr(handler, "__qualname__", repr(handler))
        self._log.exception("handler %s failed on event %r of client %s", name, ctx.event, ctx.id)
        error = sys.exc_info()[1]
        if error is not None:
            self._hooks.notify(Hook.HANDLER_ERROR, client_id=ctx.id, event=ctx.event, error=error)
