"""Record hook calls of a server, built on pluggy's ``add_hookcall_monitoring``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from stelar_core.plugins.manager import StelarPluginManager


@attrs.frozen(slots=True)
class HookCall:
    name: str
    kwargs: Mapping[str, Any]


class HookRecorder:
    """Keeps every hook call (with its arguments) made on ``pm`` until ``close()``.

    Only hooks with at least one implementation are called by the hub, so register a plugin
    implementing the hooks you want to observe (or use ``hooks={...}``).
    """

    def __init__(self, pm: StelarPluginManager) -> None:
        self.calls: list[HookCall] = []
        self._undo = pm.add_hookcall_monitoring(self._before, self._after)

    def _before(self, name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        self.calls.append(HookCall(name, dict(kwargs)))

    def _after(self, outcome: Any, name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Nothing to do after the call; pluggy requires the callback."""

    def named(self, name: str) -> list[HookCall]:
        full = name if name.startswith("stelar_") else f"stelar_{name}"
        return [call for call in self.calls if call.name == full]

    def close(self) -> None:
        self._undo()
