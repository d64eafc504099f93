"""The tracing seam: what a tracing plugin (stelar-otel) is told while a node processes a
client's event or request, sends to many and delivers, without stelar-core knowing any tracing
library.

A plugin registers a :data:`TracerFactory` with ``stelar_register_tracers``; it is called once
per server and returns a :class:`Tracer`, or None when the plugin's options ask for no tracing
(at most one tracer serves a server). With none, the hub's path pays one ``is None`` check.

For each event or request that reaches the gate, the hub asks the tracer for a
:class:`ProcessScope`, makes it current (``activate``) while the gate (name, size, rate limit)
and the handler run, also across the handler's awaits, and ends it when they are done. While it
is current, the hub tells it why the message was refused (``refused``: the error code answered),
what a handler raised (``failed``) and that a request was answered (``settled``), through
:func:`refused`, :func:`failed` and :func:`settled`, which cost one context-variable read and do
nothing outside a scope.

A handshake is a scope too (``connect``: the middleware of ``server.use`` runs in it), and so is
a connection the admission refuses.

Trace context crosses processes as a W3C ``traceparent`` string: a client may attach one to an
event or request (the frame's trace field, checked here by :func:`traceparent`), and a room
send carries the producer's to every node that delivers it (``Delivery.trace``), opaque to the
brokers that carry it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, runtime_checkable

if TYPE_CHECKING:
    from stelar_core.providers import ProviderContext


class ProcessScope(Protocol):
    """The processing of one event or request, as the tracer records it.

    ``recording`` False: the tracer records nothing of it (its sampling left it out); the scope
    is only made current (for what the spans a handler starts take as their parent), and
    ``refused``, ``failed``, ``settled`` and ``end`` are not called."""

    recording: bool

    def activate(self) -> object:
        """Make it current (for the spans the handlers start); returns what
        :meth:`deactivate` takes."""

    def deactivate(self, token: object) -> None: ...

    def refused(self, error_type: str) -> None:
        """The message was refused, answered with the error code ``error_type``."""

    def failed(self, error: BaseException) -> None:
        """What its handler raised (caught by the hub, or uncaught)."""

    def settled(self) -> None:
        """A request's answer was sent (its value, or the error :meth:`refused` was told)."""

    def end(self) -> None: ...


# What ``Tracer.process`` is given for an event no handler of its own is registered for: a name
# a client makes up must not become a span name (one per name, without bound).
UNDECLARED = "(undeclared)"


class SendScope(Protocol):
    """A send to many (a room, everyone, one client through the broker), as the tracer records it."""

    # The trace context to carry with the message to the nodes that deliver it; None when
    # this send is not recorded (not sampled), so that deliveries record nothing either.
    context: str | None

    def end(self) -> None: ...


class DeliverScope(Protocol):
    """One node's delivery of one traced message to its local recipients."""

    def end(self, recipients: int) -> None:
        """Written to ``recipients`` local connections."""


@runtime_checkable
class Tracer(Protocol):
    def process(
        self, event: str, request: bool, client_id: str, protocol: str, size: int, parent: str | None
    ) -> ProcessScope:
        """An event (or a request, ``request``) named ``event`` (:data:`UNDECLARED` when no
        handler of its own is registered for it) of ``size`` payload bytes from ``client_id``
        over ``protocol`` begins to be processed; ``parent`` is the valid traceparent the client
        attached, if any."""

    def connect(self, protocol: str | None) -> ProcessScope:
        """A handshake begins (``protocol`` None: a connection the admission refuses at once)."""

    def send(self, destination: str, room: str | None, event: str) -> SendScope:
        """``event`` is sent to ``destination`` (a room's pattern, or :data:`EVERYONE`,
        :data:`ONE_CLIENT`, :data:`ANY_ROOM`: never a raw id), the room ``room`` if any."""

    def deliver(self, destination: str, room: str | None, parent: str) -> DeliverScope:
        """A message sent with the trace context ``parent`` is delivered on this node."""


# The counter of trace contexts that were not W3C traceparents (and were ignored).
INVALID_CONTEXT = "trace_context_invalid"

# The destinations of sends that have no room pattern: span names stay few.
EVERYONE = "(everyone)"
ONE_CLIENT = "(client)"
ANY_ROOM = "(room)"


TracerFactory = Callable[["ProviderContext"], "Tracer | None"]


_CURRENT: ContextVar[ProcessScope | None] = ContextVar("stelar_process_scope", default=None)


def enter(scope: ProcessScope) -> tuple[object, Token[ProcessScope | None]]:
    """Make ``scope`` current, for the tracer and for :func:`refused` and :func:`failed`."""
    return scope.activate(), _CURRENT.set(scope)


def leave(scope: ProcessScope, tokens: tuple[object, Token[ProcessScope | None]]) -> None:
    activated, current = tokens
    _CURRENT.reset(current)
    scope.deactivate(activated)


def refused(error_type: str) -> None:
    """The message being processed was refused with ``error_type`` (nothing without a scope)."""
    scope = _CURRENT.get()
    if scope is not None:
        scope.refused(error_type)


def settled() -> None:
    """The request being processed was answered (nothing without a scope)."""
    scope = _CURRENT.get()
    if scope is not None:
        scope.settled()


def failed(error: BaseException) -> None:
    """The handler of the message being processed raised ``error`` (nothing without a scope)."""
    scope = _CURRENT.get()
    if scope is not None:
        scope.failed(error)


P = ParamSpec("P")


def within(
    scope: ProcessScope,
    work: Callable[Concatenate[P], Awaitable[None] | None],
    *args: P.args,
    **kwargs: P.kwargs,
) -> Awaitable[None] | None:
    """Run ``work`` with ``scope`` current and end the scope when it is done: at once, or, when
    it returns an awaitable, after that (which the caller awaits as it would ``work``'s)."""
    if not scope.recording:
        # Only made current (no end, no marks): the cheap path of what sampling left out.
        token = scope.activate()
        try:
            pending = work(*args, **kwargs)
        finally:
            scope.deactivate(token)
        return None if pending is None else _current_while(scope, pending)
    tokens = enter(scope)
    try:
        pending = work(*args, **kwargs)
    except BaseException as exc:
        scope.failed(exc)
        scope.end()
        raise
    finally:
        leave(scope, tokens)
    if pending is None:
        scope.end()
        return None
    return _finish(scope, pending)


async def _current_while(scope: ProcessScope, pending: Awaitable[None]) -> None:
    token = scope.activate()
    try:
        await pending
    finally:
        scope.deactivate(token)


async def _finish(scope: ProcessScope, pending: Awaitable[None]) -> None:
    tokens = enter(scope)
    try:
        await pending
    except BaseException as exc:
        scope.failed(exc)
        raise
    finally:
        leave(scope, tokens)
        scope.end()


# W3C Trace Context, section 3.2: version 00 is exactly these four fields; a later version may
# append fields after a dash, and its first four are read the same way. Version ff, and all-zero
# trace or parent ids, are invalid.
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_ZERO_TRACE = b"0" * 32
_ZERO_PARENT = b"0" * 16


def checked(raw: bytes | str, invalid: Callable[[], None]) -> str | None:
    """``raw`` (from a client, an API caller, another node or an emitter) as a traceparent, or
    None with ``invalid()`` told (the message goes on, untraced or in a trace of its own)."""
    parent = traceparent(raw.encode() if isinstance(raw, str) else raw)
    if parent is None:
        invalid()
    return parent


def traceparent(raw: bytes) -> str | None:
    """``raw`` as a traceparent string when it is one by the W3C format; else None."""
    match = _TRACEPARENT.fullmatch(raw)
    if match is None:
        return None
    version, trace_id, parent_id, _, rest = match.groups()
    if version == b"ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_PARENT:
        return None
    if version == b"00" and rest is not None:
        return None
    if rest is not None and not rest.isascii():
        return None
    return raw.decode("ascii")
