"""A Prometheus collector that reads a server's statistics when scraped."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from stelar_core.plugin_api import ServerView


class StatsCollector(Collector):
    """Everything comes from one ``get_stats()`` per scrape: nothing is counted twice and no
    metric object sits on the hot path."""

    def __init__(self, server: ServerView) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        stats = self._server.get_stats()
        connections = GaugeMetricFamily("stelar_connections", "Open connections", labels=["transport"])
        for transport in self._server.addresses:
            if transport != "http":  # the health port's own transport carries no clients
                connections.add_metric([transport], stats.connections_by_transport.get(transport, 0))
        yield connections
        yield CounterMetricFamily(
            "stelar_connections_accepted",
            "Connections that completed the handshake",
            value=stats.total_connections,
        )
        yield _by_label(
            "stelar_connections_refused", "Connections refused", "reason", stats.refused_connections
        )
        yield _by_label(
            "stelar_tls_handshake_failures",
            "TLS handshakes that did not complete (client_certificate: mTLS refusals)",
            "category",
            stats.tls_handshake_failures,
        )
        yield _by_label(
            "stelar_recoveries",
            "Joins that asked to recover missed publications, by outcome (recovered, or the reason not)",
            "outcome",
            stats.recoveries,
        )
        for name, doc, value in (
            ("stelar_messages_received", "Frames received", stats.total_messages_received),
            ("stelar_messages_sent", "Frames sent (one per recipient)", stats.total_messages_sent),
            ("stelar_bytes_received", "Frame bytes received", stats.total_bytes_received),
            ("stelar_bytes_sent", "Frame bytes sent", stats.total_bytes_sent),
            ("stelar_rate_limited", "Messages refused by a rate limit", stats.rate_limited),
            ("stelar_payload_too_large", "Messages refused for their size", stats.payload_too_large),
            ("stelar_invalid_messages", "Frames that broke the protocol", stats.invalid_messages),
            ("stelar_invalid_payloads", "Payloads that did not fit a typed handler", stats.invalid_payloads),
            ("stelar_handler_errors", "Handlers that raised", stats.handler_errors),
            (
                "stelar_slow_consumers",
                "Clients dropped for not reading",
                stats.counters.get("slow_consumers", 0),
            ),
            (
                "stelar_replayed_messages",
                "Publications replayed to recovering clients",
                stats.counters.get("replayed_messages", 0),
            ),
            (
                "stelar_answers_resent",
                "Answers sent again to a resumed session instead of running a handler twice",
                stats.counters.get("answers_resent", 0),
            ),
            (
                "stelar_conflated_messages",
                "Messages replaced by a newer one of their key for a member behind (conflate rooms)",
                stats.counters.get("conflated_messages", 0),
            ),
            (
                "stelar_dropped_messages",
                "Messages dropped for a member behind (drop_oldest rooms, or past max_queue)",
                stats.counters.get("dropped_messages", 0),
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        degraded = GaugeMetricFamily(
            "stelar_degraded",
            "1 while a component works only in part (health says degraded)",
            labels=["component"],
        )
        for component in sorted(stats.degraded):
            degraded.add_metric([component], 1)
        yield degraded
        yield CounterMetricFamily(
            "stelar_broker_publish_failures",
            "Messages for other nodes dropped because the broker could not publish them",
            value=stats.counters.get("broker_publish_failures", 0),
        )
        yield from _plugin_counters(stats.counters)
        yield GaugeMetricFamily("stelar_rooms", "Rooms", value=stats.total_rooms)
        yield GaugeMetricFamily(
            "stelar_lossy_queued",
            "Messages waiting in the lossy send queues of members behind",
            value=stats.counters.get("lossy_queued", 0),
        )
        yield GaugeMetricFamily(
            "stelar_pending_acks", "Server requests awaiting an answer", value=stats.pending_acks
        )
        yield GaugeMetricFamily("stelar_uptime_seconds", "Seconds since start", value=stats.uptime_seconds)
        yield GaugeMetricFamily("stelar_memory_rss_bytes", "Resident memory", value=stats.memory_usage["rss"])
        latency = stats.ack_latency
        cumulative, buckets = 0, []
        for bound, count in zip((*latency.bounds, float("inf")), latency.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "stelar_ack_latency_seconds",
            "Time to answer a client's request (handler included)",
            buckets=buckets,
            sum_value=latency.sum,
        )


def metrics_registry(server: ServerView) -> CollectorRegistry:
    """A registry of its own per server, so two servers in one process never collide."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(server))
    return registry


def _plugin_counters(counters: Mapping[str, int]) -> Iterator[Metric]:
    """Counters named ``name:outcome`` (``server.count`` from a plugin: the server API's
    ``api_requests:unauthorized``), one family per name with the outcome as its label."""
    by_name: dict[str, dict[str, int]] = {}
    for key, count in counters.items():
        name, colon, outcome = key.partition(":")
        if colon:
            by_name.setdefault(name, {})[outcome] = count
    for name, counts in sorted(by_name.items()):
        metric = "stelar_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)
        yield _by_label(metric, f"{name.replace('_', ' ')}, by outcome", "outcome", counts)


def _by_label(name: str, documentation: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    """A counter with one sample per key of ``counts`` (sorted), the key as ``label``."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family
