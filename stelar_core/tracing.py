"""The tracing seam: what a tracing plugin (stelar-otel) is told while a node processes a
client's event or request, without stelar-core knowing any tracing library.

A plugin registers a :data:`TracerFactory` with ``stelar_register_tracers``; it is called once
per server and returns a :class:`Tracer`, or None when the plugin's options ask for no tracing
(at most one tracer serves a server). With none, the hub's path pays one ``is None`` check.

For each event or request that reaches the gate, the hub asks the tracer for a
:class:`ProcessScope`, makes it current (``activate``) while the gate (name, size, rate limit)
and the handler run, also across the handler's awaits, and ends it when they are done. (The
middleware of ``server.use`` runs when a client connects, outside any scope.) While it is
current, the hub tells it why the message was refused (``refused``: the error code answered)
and what a handler raised (``failed``), through :func:`refused` and :func:`failed`, which cost
one context-variable read and do nothing outside a scope.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from stelar_core.providers import ProviderContext


class ProcessScope(Protocol):
    """The processing of one event or request, as the tracer records it."""

    def activate(self) -> object:
        """Make it current (for the spans the handlers start); returns what
        :meth:`deactivate` takes."""

    def deactivate(self, token: object) -> None: ...

    def refused(self, error_type: str) -> None:
        """The message was refused, answered with the error code ``error_type``."""

    def failed(self, error: BaseException) -> None:
        """What its handler raised (caught by the hub, or uncaught)."""

    def end(self) -> None: ...


# What ``Tracer.process`` is given for an event no handler of its own is registered for: a name
# a client makes up must not become a span name (one per name, without bound).
UNDECLARED = "(undeclared)"


@runtime_checkable
class Tracer(Protocol):
    def process(self, event: str, request: bool, client_id: str, protocol: str, size: int) -> ProcessScope:
        """An event (or a request, ``request``) named ``event`` (:data:`UNDECLARED` when no
        handler of its own is registered for it) of ``size`` payload bytes from ``client_id``
        over ``protocol`` begins to be processed."""


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


def failed(error: BaseException) -> None:
    """The handler of the message being processed raised ``error`` (nothing without a scope)."""
    scope = _CURRENT.get()
    if scope is not None:
        scope.failed(error)
