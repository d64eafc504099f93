"""The default per-IP connection tracker, in memory (provider ``memory``)."""

from __future__ import annotations

from stelar_core.plugins.markers import hookimpl
from stelar_core.providers import IPTrackerFactory, ProviderContext, Register


class MemoryIPTracker:
    """Open connections per IP. An IP's entry goes away with its last connection, so the table
    holds only IPs that are connected right now (bounded by ``max_connections``)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def check(self, ip: str, limit: int) -> bool:
        return self._counts.get(ip, 0) < limit

    def add(self, ip: str) -> None:
        self._counts[ip] = self._counts.get(ip, 0) + 1

    def remove(self, ip: str) -> None:
        left = self._counts.get(ip, 0) - 1
        if left > 0:
            self._counts[ip] = left
        else:
            self._counts.pop(ip, None)

    def count(self, ip: str) -> int:
        return self._counts.get(ip, 0)

    def size(self) -> int:
        return len(self._counts)


def _memory_ip_tracker(context: ProviderContext) -> MemoryIPTracker:
    return MemoryIPTracker()


@hookimpl(trylast=True)
def stelar_register_ip_trackers(register: Register[IPTrackerFactory]) -> None:
    register("memory", _memory_ip_tracker)
