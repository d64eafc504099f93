"""Calling the event hooks: by name constants, paying nothing for hooks nobody implements.

Two ways to call, matching the two kinds of event hook in ``hookspecs``:

* :meth:`HookRunner.notify` tells every implementation; one raising is logged and counted and
  the others still run.
* :meth:`HookRunner.allows` asks every implementation whether an action may happen: any ``False``
  refuses, whatever the order the plugins were registered in, and an implementation that raises
  counts as a refusal (it is logged and counted as ``hook_errors``). ``None`` and ``True`` are no
  objection.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from pluggy import HookCaller

from stelar_core.plugins.manager import StelarPluginManager

if TYPE_CHECKING:
    from stelar_core.server import StelarServer

log = logging.getLogger("stelar.hooks")

HOOK_ERRORS = "hook_errors"


class Hook:
    """The names of the event hooks, so a typo is an ``AttributeError`` rather than a silent no-op."""

    RATE_LIMIT_EXCEEDED: Final = "stelar_on_rate_limit_exceeded"
    MAX_CONNECTIONS_REACHED: Final = "stelar_on_max_connections_reached"
    CLIENT_JOIN_ROOM: Final = "stelar_on_client_join_room"
    CLIENT_LEAVE_ROOM: Final = "stelar_on_client_leave_room"
    MAX_ROOMS_REACHED: Final = "stelar_on_max_rooms_reached"
    MAX_ROOMS_PER_CLIENT_REACHED: Final = "stelar_on_max_rooms_per_client_reached"
    PAYLOAD_TOO_LARGE: Final = "stelar_on_payload_too_large"
    INVALID_MESSAGE: Final = "stelar_on_invalid_message"
    SLOW_CONSUMER: Final = "stelar_on_slow_consumer"
    HANDLER_ERROR: Final = "stelar_on_handler_error"
    BEFORE_BROADCAST: Final = "stelar_on_before_broadcast"
    CLIENT_CONNECT: Final = "stelar_on_client_connect"
    CLIENT_DISCONNECT: Final = "stelar_on_client_disconnect"
    SERVER_STARTED: Final = "stelar_on_server_started"
    SERVER_STOPPING: Final = "stelar_on_server_stopping"


class HookRunner:
    """Calls one server's event hooks with ``server`` filled in.

    Each implementation is called through its own pluggy caller (``subset_hook_caller``), so
    ``STELAR_TRACE_PLUGINS`` and hook-call monitoring see every call, and one implementation
    raising neither stops the others nor decides for them.
    """

    __slots__ = ("_callers", "_counters", "_generation", "_pm", "_server")

    def __init__(self, pm: StelarPluginManager, server: StelarServer, counters: Counter[str]) -> None:
        self._pm = pm
        self._server = server
        self._counters = counters
        self._callers: dict[str, list[tuple[str, HookCaller]]] = {}
        self._generation = -1

    def implemented(self, hook: str) -> bool:
        return self._pm.implements(hook)

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Tell every implementation; returns nothing."""
        if not self._pm.implements(hook):
            return
        for plugin_name, caller in self._per_implementation(hook):
            try:
                caller(server=self._server, **kwargs)
            except Exception:
                self._failed(hook, plugin_name)

    def allows(self, hook: str, **kwargs: Any) -> bool:
        """Whether no implementation objects (returns ``False`` or raises). Every one is asked."""
        if not self._pm.implements(hook):
            return True
        allowed = True
        for plugin_name, caller in self._per_implementation(hook):
            try:
                answers = caller(server=self._server, **kwargs)
            except Exception:
                self._failed(hook, plugin_name)
                allowed = False
                continue
            if False in answers:
                allowed = False
        return allowed

    def _per_implementation(self, hook: str) -> list[tuple[str, HookCaller]]:
        if self._generation != self._pm.generation:
            self._callers.clear()
            self._generation = self._pm.generation
        callers = self._callers.get(hook)
        if callers is None:
            impls = getattr(self._pm.hook, hook).get_hookimpls()
            # pluggy calls the last registered first; keep that order (user code first).
            callers = [
                (
                    impl.plugin_name,
                    self._pm.subset_hook_caller(
                        hook, [o.plugin for o in impls if o.plugin is not impl.plugin]
                    ),
                )
                for impl in reversed(impls)
            ]
            self._callers[hook] = callers
        return callers

    def _failed(self, hook: str, plugin_name: str) -> None:
        self._counters[HOOK_ERRORS] += 1
        log.exception("hook %s of plugin %s raised", hook, plugin_name)
