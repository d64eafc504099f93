"""Counters the hub keeps, and the snapshot ``get_stats()`` returns."""

from __future__ import annotations

import bisect
import resource
import sys
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stelar_core.values import LATENCY_BUCKETS, LatencySnapshot, Stats

if TYPE_CHECKING:
    from stelar_core.hub.session import Session


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
    # ru_maxrss is sampled by the kernel and can lag the rss read just after it: the peak is
    # at least what is resident now.
    return {"rss": rss, "peak_rss": max(peak_bytes, rss)}


class Counters:
    """Plain integer counters, bumped on the hot path with ``+=`` (no locks: one event loop)."""

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "handler_errors",
        "invalid_messages",
        "invalid_payloads",
        "messages_received",
        "messages_sent",
        "other",
        "payload_too_large",
        "rate_limited",
        "recoveries",
        "refused",
        "tls_handshake_failures",
        "total_connections",
    )

    def __init__(self) -> None:
        self.total_connections = 0
        self.messages_received = 0
        self.messages_sent = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.invalid_messages = 0
        self.invalid_payloads = 0
        self.rate_limited = 0
        self.payload_too_large = 0
        self.handler_errors = 0
        self.refused: Counter[str] = Counter()
        # Joins that asked to recover, by outcome: "recovered" or the reason it was not.
        self.recoveries: Counter[str] = Counter()
        self.other: Counter[str] = Counter()
        self.tls_handshake_failures: Counter[str] = Counter()


class LatencyHistogram:
    """Fixed buckets: constant memory, one bisect per observation."""

    __slots__ = ("_counts", "_sum")

    def __init__(self) -> None:
        self._counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        self._counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sum += seconds

    def snapshot(self) -> LatencySnapshot:
        return LatencySnapshot(LATENCY_BUCKETS, tuple(self._counts), sum(self._counts), self._sum)


def snapshot(
    counters: Counters,
    *,
    open_sessions: Mapping[str, Session],
    by_transport: Mapping[str, int],
    rooms: int,
    limiter_entries: int,
    degraded: Mapping[str, str],
    latency: LatencySnapshot,
    uptime: float,
    transports: Mapping[str, Mapping[str, Any]],
) -> Stats:
    """A ``Stats`` of the hub's counters and state now (``get_stats()``)."""
    memory = memory_usage()
    return Stats(
        total_connections=counters.total_connections,
        active_connections=len(open_sessions),
        total_messages_received=counters.messages_received,
        total_messages_sent=counters.messages_sent,
        total_bytes_received=counters.bytes_received,
        total_bytes_sent=counters.bytes_sent,
        total_rooms=rooms,
        uptime_ms=int(uptime * 1000),
        uptime_seconds=round(uptime, 3),
        connections_by_transport={name: n for name, n in by_transport.items() if n},
        memory_mb=round(memory["rss"] / (1024 * 1024), 2),
        memory_usage=memory,
        degraded=dict(degraded),
        rate_limiter_entries=limiter_entries,
        invalid_messages=counters.invalid_messages,
        invalid_payloads=counters.invalid_payloads,
        rate_limited=counters.rate_limited,
        payload_too_large=counters.payload_too_large,
        handler_errors=counters.handler_errors,
        pending_acks=sum(session.pending_acks for session in open_sessions.values()),
        refused_connections=dict(counters.refused),
        tls_handshake_failures=dict(counters.tls_handshake_failures),
        counters=dict(counters.other),
        recoveries=dict(counters.recoveries),
        ack_latency=latency,
        transports={name: dict(values) for name, values in transports.items()},
    )
