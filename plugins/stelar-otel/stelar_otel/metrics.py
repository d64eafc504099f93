"""The figures of ``get_stats()`` (those ``/metrics`` serves to Prometheus) as OpenTelemetry
metrics, for applications that export OTLP (imported only when the option asks for them).

Every instrument is asynchronous: the SDK calls back at each collection and one ``get_stats()``
per server answers all of them, so nothing is added to the path of a message. Messages use the
messaging semantic conventions' names (``messaging.client.sent.messages``,
``messaging.client.consumed.messages``); the rest are ``stelar.*``. The request latency, a
histogram in ``/metrics``, is here its sum and count (OpenTelemetry has no asynchronous
histogram, and a synchronous one would cost a record per request).

The instruments are made once per process; each observation carries the server's node ID as
``stelar.node``, so that several servers in one process stay apart. A periodic reader collects
on a thread of its own: the statistics are then read on the server's event loop, which owns them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from stelar_core.plugin_api import ServerView, Stats

SYSTEM = "stelar"
Read = Callable[[Stats, ServerView], Iterable[tuple[float, Mapping[str, str]]]]


def _total(field: str) -> Read:
    return lambda stats, server: ((getattr(stats, field), {}),)


def _by(field: str, attribute: str) -> Read:
    return lambda stats, server: ((count, {attribute: key}) for key, count in getattr(stats, field).items())


def _connections(stats: Stats, server: ServerView) -> Iterator[tuple[float, Mapping[str, str]]]:
    for transport in server.addresses:
        if transport != "http":  # the health port's own transport carries no clients
            yield stats.connections_by_transport.get(transport, 0), {"stelar.transport": transport}


def _counters(stats: Stats, server: ServerView) -> Iterator[tuple[float, Mapping[str, str]]]:
    """The counters hooks and plugins keep (``server.count``): ``name`` or ``name:outcome``."""
    for key, count in stats.counters.items():
        name, _, outcome = key.partition(":")
        yield count, {"stelar.counter": name, **({"stelar.outcome": outcome} if outcome else {})}


def _degraded(stats: Stats, server: ServerView) -> Iterator[tuple[float, Mapping[str, str]]]:
    for component in stats.degraded:
        yield 1, {"stelar.component": component}


def _latency_sum(stats: Stats, server: ServerView) -> Iterator[tuple[float, Mapping[str, str]]]:
    yield stats.ack_latency.sum, {}


def _latency_count(stats: Stats, server: ServerView) -> Iterator[tuple[float, Mapping[str, str]]]:
    yield sum(stats.ack_latency.counts), {}


def _rss(stats: Stats, server: ServerView) -> Iterator[tuple[float, Mapping[str, str]]]:
    yield stats.memory_usage["rss"], {}


# (instrument kind, name, unit, description, what it reads)
COUNTERS: tuple[tuple[str, str, str, str, Read], ...] = (
    (
        "counter",
        "messaging.client.consumed.messages",
        "{message}",
        "Frames received",
        _total("total_messages_received"),
    ),
    (
        "counter",
        "messaging.client.sent.messages",
        "{message}",
        "Frames sent (one per recipient)",
        _total("total_messages_sent"),
    ),
    ("counter", "stelar.bytes.received", "By", "Frame bytes received", _total("total_bytes_received")),
    ("counter", "stelar.bytes.sent", "By", "Frame bytes sent", _total("total_bytes_sent")),
    (
        "counter",
        "stelar.connections.accepted",
        "{connection}",
        "Connections that completed the handshake",
        _total("total_connections"),
    ),
    (
        "counter",
        "stelar.connections.refused",
        "{connection}",
        "Connections refused, by reason",
        _by("refused_connections", "stelar.reason"),
    ),
    (
        "counter",
        "stelar.tls.handshake_failures",
        "{handshake}",
        "TLS handshakes that did not complete",
        _by("tls_handshake_failures", "stelar.category"),
    ),
    (
        "counter",
        "stelar.recoveries",
        "{join}",
        "Joins that asked to recover, by outcome",
        _by("recoveries", "stelar.outcome"),
    ),
    (
        "counter",
        "stelar.rate_limited",
        "{message}",
        "Messages refused by a rate limit",
        _total("rate_limited"),
    ),
    (
        "counter",
        "stelar.payload_too_large",
        "{message}",
        "Messages refused for their size",
        _total("payload_too_large"),
    ),
    (
        "counter",
        "stelar.invalid_messages",
        "{message}",
        "Frames that broke the protocol",
        _total("invalid_messages"),
    ),
    (
        "counter",
        "stelar.invalid_payloads",
        "{message}",
        "Payloads that did not fit a typed handler",
        _total("invalid_payloads"),
    ),
    ("counter", "stelar.handler_errors", "{error}", "Handlers that raised", _total("handler_errors")),
    (
        "counter",
        "stelar.counters",
        "1",
        "The counters of get_stats().counters, by name (and outcome)",
        _counters,
    ),
    (
        "counter",
        "stelar.ack_latency.sum",
        "s",
        "Time spent answering client requests (handler included)",
        _latency_sum,
    ),
    ("counter", "stelar.ack_latency.count", "{request}", "Client requests answered", _latency_count),
    ("gauge", "stelar.connections", "{connection}", "Open connections, by transport", _connections),
    ("gauge", "stelar.rooms", "{room}", "Rooms", _total("total_rooms")),
    (
        "gauge",
        "stelar.pending_acks",
        "{request}",
        "Server requests awaiting an answer",
        _total("pending_acks"),
    ),
    ("gauge", "stelar.degraded", "1", "1 while a component works only in part", _degraded),
    ("gauge", "stelar.uptime", "s", "Seconds since start", _total("uptime_seconds")),
    ("gauge", "stelar.memory.rss", "By", "Resident memory", _rss),
)


class ServerMetrics:
    """The servers this process observes, and the instruments that read them."""

    # A collection reads each server's statistics once, however many instruments ask; a server
    # whose loop does not answer within READ_TIMEOUT is left out of that collection.
    FRESH = 0.5
    READ_TIMEOUT = 2.0

    def __init__(self, meter: metrics.Meter) -> None:
        self._servers: dict[int, tuple[ServerView, asyncio.AbstractEventLoop]] = {}
        self._lock = threading.Lock()  # collections may run on the SDK's export thread
        self._read: dict[int, tuple[float, Stats]] = {}
        for kind, name, unit, description, read in COUNTERS:
            make = meter.create_observable_counter if kind == "counter" else meter.create_observable_gauge
            make(name, callbacks=[self._callback(read)], unit=unit, description=description)

    def observe(self, server: ServerView) -> None:
        """Observe ``server`` (called on its event loop) until :meth:`forget`."""
        with self._lock:
            self._servers[id(server)] = (server, asyncio.get_running_loop())

    def forget(self, server: ServerView) -> None:
        with self._lock:
            self._servers.pop(id(server), None)
            self._read.pop(id(server), None)

    def _callback(self, read: Read) -> Callable[[CallbackOptions], Iterator[Observation]]:
        def observe(options: CallbackOptions) -> Iterator[Observation]:
            for server, stats in self._stats():
                node = {"messaging.system": SYSTEM, "stelar.node": server.cluster.node_id}
                for value, attributes in read(stats, server):
                    yield Observation(value, {**node, **attributes})

        return observe

    def _stats(self) -> list[tuple[ServerView, Stats]]:
        now = time.monotonic()
        with self._lock:
            servers = list(self._servers.items())
        read: list[tuple[ServerView, Stats]] = []
        for key, (server, loop) in servers:
            kept = self._read.get(key)
            if kept is None or now - kept[0] > self.FRESH:
                stats = _on_loop(loop, server.get_stats, self.READ_TIMEOUT)
                if stats is None:
                    continue
                kept = (now, stats)
                self._read[key] = kept
            read.append((server, kept[1]))
        return read


def _on_loop(loop: asyncio.AbstractEventLoop, read: Callable[[], Stats], timeout: float) -> Stats | None:
    """``read()`` on ``loop``'s thread: at once when that is this thread, else handed over."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return read()
    if loop.is_closed():
        return None

    async def on_loop() -> Stats:
        return read()

    try:
        return asyncio.run_coroutine_threadsafe(on_loop(), loop).result(timeout)
    except (TimeoutError, RuntimeError):
        return None


_METRICS: ServerMetrics | None = None


def server_metrics() -> ServerMetrics:
    """This process's instruments, made on the global meter provider at the first call."""
    global _METRICS
    if _METRICS is None:
        from stelar_otel.tracer import INSTRUMENTATION

        _METRICS = ServerMetrics(metrics.get_meter(INSTRUMENTATION))
    return _METRICS
