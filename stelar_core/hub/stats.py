"""Counters the hub keeps, and the snapshot ``get_stats()`` returns."""

from __future__ import annotations

import bisect
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
        self.other: Counter[str] = Counter()
        self.tls_handshake_failures: Counter[str] = Counter()


# Seconds; the upper bounds of the ACK latency histogram (Prometheus-style, cumulative on export).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@attrs.frozen(slots=True)
class LatencySnapshot:
    """``counts[i]`` requests took at most ``bounds[i]`` seconds and more than the bound before;
    the last count is for those above every bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: int
    sum: float


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
    ack_latency: LatencySnapshot
    # Components working only in part, with the reason (health says "degraded" while any is).
    degraded: Mapping[str, str] = attrs.field(factory=dict)
    # TLS handshakes that failed, by category: "client_certificate" (mTLS refusals), "timeout",
    # "overload" (too many at once), "error" (anything else: plaintext sent to a TLS port...).
    tls_handshake_failures: Mapping[str, int] = attrs.field(factory=dict)
    # Messages whose payload did not fit their typed handler (answered ``invalid_payload``).
    invalid_payloads: int = 0
    # Each transport's own figures (``Transport.stats()``), by transport name.
    transports: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    def __getattr__(self, name: str) -> int:
        # The seed's ``ws_connections`` / ``tcp_connections``, for any transport: ``<name>_connections``.
        transport = name.removesuffix("_connections")
        if transport != name and transport:
            return self.connections_by_transport.get(transport, 0)
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        for transport in self.transports:
            data[f"{transport}_connections"] = self.connections_by_transport.get(transport, 0)
        return data
