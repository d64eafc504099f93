"""The values every layer passes around: what a client is, a server's statistics.

The bottom layer: plain attrs records, importing nothing of stelar, so the hub, the providers,
the facades and plugins can all name them without depending on each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs


@attrs.frozen(slots=True)
class ClientInfo:
    """A client as ``get_clients()`` lists it."""

    id: str
    protocol: str
    remote_address: str
    rooms: frozenset[str]
    metadata: Mapping[str, Any]
    # When the connection opened (Unix time); None when unknown (a node that does not say).
    connected_at: float | None = None


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
    # Joins that asked to recover missed publications, by outcome: "recovered", or the reason
    # it was not (docs/delivery.md); the publications replayed are ``counters["replayed_messages"]``.
    recoveries: Mapping[str, int] = attrs.field(factory=dict)
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


# Figures of a node's ``Stats`` that add up across nodes.
SUMMED = (
    "active_connections",
    "total_connections",
    "total_messages_received",
    "total_messages_sent",
    "total_bytes_received",
    "total_bytes_sent",
    "rate_limited",
    "invalid_messages",
    "pending_acks",
)


@attrs.frozen(slots=True, kw_only=True)
class ClusterStats:
    """Cluster totals and each live node's own figures (``Stats.to_dict()`` as it last
    published them). ``total_rooms`` counts distinct rooms, not the sum over nodes."""

    node_count: int
    total_rooms: int
    totals: Mapping[str, int]
    connections_by_transport: Mapping[str, int]
    nodes: Mapping[str, Mapping[str, Any]]

    def __getattr__(self, name: str) -> int:
        # cluster.active_connections and the rest of SUMMED, as on a node's Stats.
        try:
            return self.totals[name]
        except KeyError:
            raise AttributeError(name) from None


def cluster_stats(nodes: Mapping[str, Mapping[str, Any]], total_rooms: int) -> ClusterStats:
    totals = {name: sum(int(stats.get(name, 0)) for stats in nodes.values()) for name in SUMMED}
    by_transport: dict[str, int] = {}
    for stats in nodes.values():
        for transport, count in stats.get("connections_by_transport", {}).items():
            by_transport[transport] = by_transport.get(transport, 0) + int(count)
    return ClusterStats(
        node_count=len(nodes),
        total_rooms=total_rooms,
        totals=totals,
        connections_by_transport=by_transport,
        nodes=nodes,
    )


class Options(Mapping[str, Any]):
    """One section's validated values: ``options["url"]`` or ``options.url``. Immutable."""

    __slots__ = ("_section", "_values")

    def __init__(self, section: str, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_values", dict(values))

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not an option (and never recurse before __init__ has run)
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"section {self._section!r} has no option {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("plugin options are read-only; use update_config")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __hash__(self) -> int:
        return hash((self._section, tuple(sorted(self._values))))

    def __repr__(self) -> str:
        return f"Options({self._section!r}, {self._values!r})"

    def __reduce__(self) -> tuple[type[Options], tuple[str, dict[str, Any]]]:
        return Options, (self._section, self._values)  # copy and pickle build a new one


@attrs.frozen(slots=True)
class Tapped:
    """What a tap sees. ``kind``: ``event`` and ``request`` (from a client, past its rate limit),
    ``publish`` (to a room), ``broadcast``, ``send`` (to one client), ``connect``,
    ``disconnect``, ``join``, ``leave``."""

    kind: str
    event: str | None = None
    room: str | None = None
    client_id: str | None = None
