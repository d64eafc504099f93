"""The user's handlers, by kind, and running a chain of them.

The registry is changed only through its methods (``StelarServer.on``/``off``/... call them);
what the hub reads are tuples, so a handler list cannot be changed behind its back. A typed
handler (``fn(ctx, msg: ChatMessage) -> Answer``) is stored wrapped: the wrapper structures the
payload first (``stelar_core.payloads``) and unstructures the answer; an untyped ``fn(ctx)`` is
stored as it is, so it costs what it always did.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import cattrs

from stelar_core import tracing
from stelar_core.errors import ConfigError, InvalidPayload
from stelar_core.hub.context import Context
from stelar_core.hub.hooks import Hook, HookRunner
from stelar_core.hub.middleware import Middleware
from stelar_core.hub.stats import Counters
from stelar_core.payloads import handler_types, make_converter, structure, unstructure
from stelar_core.protocol import ErrorCode, Frame
from stelar_core.protocol.publications import RESERVED_PREFIX

if TYPE_CHECKING:
    from stelar_core.hub.outbox import Outbox

Handler = Callable[[Context], Any]


@attrs.frozen(slots=True)
class AckHandler:
    """The one handler answering requests of a name. ``concurrent``: requests of one client run
    side by side (bounded by ``max_concurrent_requests``) instead of one after the other."""

    function: Handler
    concurrent: bool = False


@attrs.frozen(slots=True)
class Described:
    """One entry of the server's interface. ``kind``: ``event`` (a client emits it, handlers
    take it), ``request`` (a client asks, ``on_ack`` answers) or ``sent`` (the server emits it,
    declared with ``server.emits``)."""

    kind: str
    name: str
    payload: Any
    answer: Any
    summary: str


def _summary(functions: Sequence[Callable[..., Any]]) -> str:
    """The first line of the first handler's docstring."""
    for function in functions:
        if function.__doc__:
            return function.__doc__.strip().splitlines()[0]
    return ""


class PayloadRefused(Exception):
    """Raised by a typed handler's wrapper, before the handler runs, when the payload does not
    fit (an ``InvalidPayload`` that the handler itself raises is a handler error like any other)."""

    def __init__(self, invalid: InvalidPayload) -> None:
        super().__init__(str(invalid))
        self.invalid = invalid


def bind(handler: Callable[..., Any], converter: cattrs.Converter) -> Handler:
    """``handler`` as the hub calls it, ``fn(ctx)``: itself when untyped, else wrapped."""
    types = handler_types(handler)
    if not types.typed:
        return handler
    takes_payload, payload, answer = types.takes_payload, types.payload, types.answer

    @functools.wraps(handler)
    def typed(ctx: Context) -> Any:
        if not takes_payload:
            result = handler(ctx)
        elif payload is None:
            result = handler(ctx, ctx.data)
        else:
            try:
                value = structure(converter, ctx.data, payload, ctx.event)
            except InvalidPayload as invalid:
                raise PayloadRefused(invalid) from None
            result = handler(ctx, value)
        if inspect.isawaitable(result):
            return _unstructured(result, converter, answer)
        return unstructure(converter, result, answer)

    return typed


async def _unstructured(result: Awaitable[Any], converter: cattrs.Converter, answer: Any) -> Any:
    return unstructure(converter, await result, answer)


def unwrapped(handler: Handler) -> Callable[..., Any]:
    """The function the user registered."""
    return getattr(handler, "__wrapped__", handler)


class HandlerRegistry:
    __slots__ = (
        "_acks",
        "_any",
        "_connection",
        "_disconnect",
        "_events",
        "_middleware",
        "converter",
        "emitted",
    )

    def __init__(self) -> None:
        # Structures typed handlers' payloads; users may register hooks on it for their types.
        self.converter = make_converter()
        # Events the server sends, declared with their payload types: (type, description).
        self.emitted: dict[str, tuple[Any, str]] = {}
        self._events: dict[str, tuple[Handler, ...]] = {}
        self._any: tuple[Handler, ...] = ()
        self._acks: dict[str, AckHandler] = {}
        self._connection: tuple[Handler, ...] = ()
        self._disconnect: tuple[Handler, ...] = ()
        self._middleware: tuple[Middleware, ...] = ()

    # ------------------------------------------------------------------ changes

    def add_event(self, event: str, handler: Callable[..., Any]) -> None:
        self._events[event] = (*self._events.get(event, ()), bind(handler, self.converter))

    def remove_event(self, event: str, handler: Callable[..., Any] | None) -> None:
        """Remove one handler of ``event`` (every registration of it), or all of them."""
        left = (
            ()
            if handler is None
            else tuple(h for h in self._events.get(event, ()) if unwrapped(h) != handler)
        )
        if left:
            self._events[event] = left
        else:
            self._events.pop(event, None)

    def add_any(self, handler: Callable[..., Any]) -> None:
        self._any = (*self._any, bind(handler, self.converter))

    def set_ack(self, name: str, handler: Callable[..., Any], *, concurrent: bool) -> None:
        if name.startswith(RESERVED_PREFIX):
            raise ConfigError(
                f"request names starting with {RESERVED_PREFIX!r} are the protocol's own: {name!r}"
            )
        self._acks[name] = AckHandler(bind(handler, self.converter), concurrent)

    def declare_emit(self, event: str, payload: Any, description: str) -> None:
        self.emitted[event] = (payload, description)

    def described(self) -> list[Described]:
        """Every event and request the handlers take and every event declared as sent, with
        the types they declare (for the AsyncAPI document), in registration order."""
        found = []
        for event, handlers in self._events.items():
            functions = [unwrapped(h) for h in handlers]
            payload = next((t.payload for t in map(handler_types, functions) if t.payload is not None), None)
            found.append(Described("event", event, payload, None, _summary(functions)))
        for name, ack in self._acks.items():
            function = unwrapped(ack.function)
            types = handler_types(function)
            found.append(Described("request", name, types.payload, types.answer, _summary([function])))
        for event, (payload, description) in self.emitted.items():
            found.append(Described("sent", event, payload, None, description))
        return found

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

    def declares(self, event: str, request: bool) -> bool:
        """Whether a handler of its own is registered for the event (or the request) ``event``."""
        return event in (self._acks if request else self._events)

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

    __slots__ = ("_counters", "_hooks", "_log", "_outbox")

    def __init__(self, counters: Counters, hooks: HookRunner, log: logging.Logger, outbox: Outbox) -> None:
        self._counters = counters
        self._hooks = hooks
        self._log = log
        self._outbox = outbox

    def run(self, handlers: Sequence[Handler], ctx: Context) -> Awaitable[None] | None:
        for index, handler in enumerate(handlers):
            try:
                result = handler(ctx)
            except PayloadRefused as refused:
                self.refuse_payload(ctx, refused.invalid)
                continue
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
            except PayloadRefused as refused:
                self.refuse_payload(ctx, refused.invalid)
            except Exception:
                self.failed(handler, ctx)

    def refuse_payload(self, ctx: Context, invalid: InvalidPayload, request: Frame | None = None) -> None:
        """A payload did not fit its handler's type: the handler was not called. Counted
        (``invalid_payloads``), told to ``on_invalid_payload``, and answered with the code
        ``invalid_payload``: in the request's answer, or in an error frame naming the event."""
        self._counters.invalid_payloads += 1
        tracing.refused(ErrorCode.INVALID_PAYLOAD)
        self._hooks.notify(
            Hook.INVALID_PAYLOAD, client_id=ctx.id, event=ctx.event, errors=list(invalid.problems)
        )
        session = ctx._session
        if request is not None:
            self._outbox.reply_error(session, request, ErrorCode.INVALID_PAYLOAD, str(invalid))
        else:
            self._outbox.send_error(
                session, ErrorCode.INVALID_PAYLOAD, str(invalid), ctx.event, errors=invalid.problems
            )

    def failed(self, handler: object, ctx: Context) -> None:
        """Called inside ``except``: log, count and report the exception being handled."""
        self._counters.handler_errors += 1
        name = getattr(handler, "__qualname__", repr(handler))
        self._log.exception("handler %s failed on event %r of client %s", name, ctx.event, ctx.id)
        error = sys.exc_info()[1]
        if error is not None:
            tracing.failed(error)
            self._hooks.notify(Hook.HANDLER_ERROR, client_id=ctx.id, event=ctx.event, error=error)
