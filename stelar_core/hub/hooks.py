"""Calling the event hooks: by name constants, paying nothing for hooks nobody implements.

Two ways to call, matching the two kinds of event hook in ``hookspecs``:

* :meth:`HookRunner.notify` tells every implementation; one raising is logged and counted and
  the others still run (the plugin manager guards each implementation).
* :meth:`HookRunner.allows` asks every implementation whether an action may happen: any ``False``
  refuses, whatever the order the plugins were registered in, and an implementation that raises
  counts as a refusal (it is logged and counted as ``hook_errors``). ``None`` and ``True`` are no
  objection.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from stelar_core.plugins.manager import HOOK_FAILED, StelarPluginManager

if TYPE_CHECKING:
    from stelar_core.plugins.view import ServerView

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
    SESSION_EXPIRED: Final = "stelar_on_session_expired"
    PRESENCE_JOIN: Final = "stelar_on_presence_join"
    PRESENCE_LEAVE: Final = "stelar_on_presence_leave"
    SERVER_STARTED: Final = "stelar_on_server_started"
    SERVER_STOPPING: Final = "stelar_on_server_stopping"
    DEGRADED: Final = "stelar_on_degraded"
    RESTORED: Final = "stelar_on_restored"
    TLS_HANDSHAKE_FAILED: Final = "stelar_on_tls_handshake_failed"
    INVALID_PAYLOAD: Final = "stelar_on_invalid_payload"


class HookRunner:
    """Calls one server's event hooks with ``server`` filled in, each as one pluggy call (so
    ``STELAR_TRACE_PLUGINS`` and hook-call monitoring see it once). The plugin manager guards
    every implementation: one that raises is logged, counted here as ``hook_errors`` and
    answers ``HOOK_FAILED``, and the others are still called."""

    __slots__ = ("_pm", "_server")

    def __init__(self, pm: StelarPluginManager, server: ServerView, counters: Counter[str]) -> None:
        self._pm = pm
        self._server = server

        def count(hook: str, plugin: str) -> None:
            counters[HOOK_ERRORS] += 1

        pm.on_hook_error = count

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Tell every implementation."""
        if self._pm.implements(hook):
            getattr(self._pm.hook, hook)(server=self._server, **kwargs)

    def allows(self, hook: str, **kwargs: Any) -> bool:
        """Whether no implementation objects (returns ``False`` or raises). Every one is asked."""
        if not self._pm.implements(hook):
            return True
        answers = getattr(self._pm.hook, hook)(server=self._server, **kwargs)
        return not any(answer is False or answer is HOOK_FAILED for answer in answers)
