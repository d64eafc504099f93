"""What the hub's parts share, as one frozen record.

The hub builds it once and hands it whole to each part (``Handshake(services, ...)``), instead
of each part taking its own long list of positional arguments: a part names what it uses from
the record in its constructor, and a new shared service is one field here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from stelar_core.config import ServerConfig
from stelar_core.hub.handlers import HandlerRegistry, HandlerRunner
from stelar_core.hub.hooks import HookRunner
from stelar_core.hub.outbox import Outbox
from stelar_core.hub.stats import Counters
from stelar_core.hub.taps import Taps

if TYPE_CHECKING:
    from stelar_core.hub.context import Context
    from stelar_core.hub.session import Session
    from stelar_core.tracing import Tracer


@attrs.frozen(slots=True, kw_only=True)
class HubServices:
    # The configuration in force: a call, because update_config replaces it while parts live.
    config: Callable[[], ServerConfig]
    counters: Counters
    hooks: HookRunner
    outbox: Outbox
    handlers: HandlerRegistry
    runner: HandlerRunner
    # ctx for a session, an event and its data.
    context: Callable[[Session, str, Any], Context]
    # Close a session from the server's side (a disconnect frame, then the connection).
    close: Callable[[Session, int, str], None]
    # Run an awaitable in a task the hub tracks (stop waits for it).
    spawn: Callable[[Awaitable[Any]], asyncio.Task[Any]]
    log: logging.Logger
    # Listeners to what goes through the node (see taps.py); empty unless an operator watches.
    taps: Taps
    # The tracing plugin's tracer (tracing.py), or None: parts that trace choose their path once.
    tracer: Tracer | None = None
