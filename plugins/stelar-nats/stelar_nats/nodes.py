"""The other nodes of the cluster as their heartbeats show them (sans-I/O but for the clock):
who is alive, and each one's last statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# More nodes than this are not believed: heartbeats from made-up origins cannot grow the table.
MAX_NODES = 4096


class NodeTable:
    def __init__(self, node_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = node_timeout
        self._clock = clock
        self._nodes: dict[str, tuple[float, dict[str, Any]]] = {}

    def beat(self, node: str, stats: Any) -> bool:
        """A heartbeat of ``node``; False when it is not taken (a full table, bad statistics)."""
        self._expire()
        if not isinstance(stats, dict) or (node not in self._nodes and len(self._nodes) >= MAX_NODES):
            return False
        self._nodes[node] = (self._clock() + self._timeout, stats)
        return True

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def gone(self, node: str) -> None:
        """``node`` said goodbye (it stopped)."""
        self._nodes.pop(node, None)

    def alive(self) -> list[str]:
        """Nodes heard from within ``node_timeout``, sorted."""
        self._expire()
        return sorted(self._nodes)

    def stats(self) -> dict[str, dict[str, Any]]:
        self._expire()
        return {node: stats for node, (_, stats) in self._nodes.items()}

    def _expire(self) -> None:
        now = self._clock()
        for node in [node for node, (until, _) in self._nodes.items() if until <= now]:
            del self._nodes[node]
