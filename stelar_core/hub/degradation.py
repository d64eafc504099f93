"""Components working only in part (a broker that lost Redis): what health reports as
``degraded``, with the ``on_degraded`` / ``on_restored`` hooks told once per change."""

from __future__ import annotations

import logging
import time

from stelar_core.hub.hooks import Hook, HookRunner


class Degradation:
    __slots__ = ("_hooks", "_log", "_since")

    def __init__(self, hooks: HookRunner, log: logging.Logger) -> None:
        self._hooks = hooks
        self._log = log
        # component -> (reason, since) on the monotonic clock.
        self._since: dict[str, tuple[str, float]] = {}

    def set(self, component: str, reason: str | None) -> None:
        """``component`` works only in part for ``reason``, or again fully (``None``)."""
        if reason is None:
            since = self._since.pop(component, None)
            if since is not None:
                seconds = time.monotonic() - since[1]
                self._log.warning("%s restored after %.1fs", component, seconds)
                self._hooks.notify(Hook.RESTORED, component=component, seconds=seconds)
            return
        already = component in self._since
        self._since[component] = (reason, self._since[component][1] if already else time.monotonic())
        if not already:
            self._log.warning("%s degraded: %s", component, reason)
            self._hooks.notify(Hook.DEGRADED, component=component, reason=reason)

    def reasons(self) -> dict[str, str]:
        return {component: reason for component, (reason, _) in self._since.items()}
