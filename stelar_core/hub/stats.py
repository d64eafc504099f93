"""Counters the hub keeps, and the snapshot ``get_stats()`` returns."""

from __future__ import annotations

import resource
import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs


def memory_usage() -> dict[str, int]:
    """Resident set size now (Linux ``/proc``) and the peak, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024
    rss = peak_bytes
    try:
        with open("/proc/self/statm", "rb") as statm:
            rss = int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        pass
    return {"rss": rss, "peak_rss": peak_bytes}


class Counters:
    """Plain integer counters, bumped on the hot path with ``+=`` (no locks: one event loop)."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "handler_errors",
        "invalid_messages",
        "messages_received",
        "messages_sent",
        "other",
        "payload_too_large",
        "rate_limited",
        "refused",
        "total_connections",
    )

    def __init__(self) -> None:
        self.total_connections = 0
        self.messages_received = 0
        self.messages_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.invalid_messages = 0
        self.rate_limited = 0
        self.payload_too_large = 0
        self.handler_errors = 0
        self.refused: Counter[str] = Counter()
        self.other: Counter[str] = Counter()


@attrs.frozen(slots=True, kw_only=True)
class Stats:
    """A snapshot of a server's statistics (the seed's ``getStats()`` fields, in snake_case)."""

    total_connections: int
    active_connections: int
    total_messages_received: int
    total_messages_sent: int
    total_bytes_received: int
    total_bytes_sent: int
    total_rooms: int
    uptime_ms: int
    uptime_seconds: float
    connections_by_transport: Mapping[str, int]
    memory_mb: float
    memory_usage: Mapping[str, int]
    rate_limiter_entries: int
    invalid_messages: int
    rate_limited: int
    payload_too_large: int
    handler_errors: int
    pending_acks: int
    refused_connections: Mapping[str, int]
    counters: Mapping[str, int]

    @property
    def ws_connections(self) -> int:
        return self.connections_by_transport.get("ws", 0)

    @property
    def tcp_connections(self) -> int:
        return self.connections_by_transport.get("tcp", 0)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["ws_connections"] = self.ws_connections
        data["tcp_connections"] = self.tcp_connections
        return data
