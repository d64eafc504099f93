"""The figures of get_stats() as OpenTelemetry metrics, read by the SDK's in-memory reader: the
same values, per server (``stelar.node``), read from the reader's own thread as a periodic
exporter does; none for a server with metrics off, and none once a server stopped."""

from __future__ import annotations

import pytest

from stelar_core import StelarServer
from stelar_core.testing import connect_client

pytestmark = pytest.mark.one_loop


def points(data, name: str, node: str) -> dict[tuple, float]:
    """The points of metric ``name`` observed for server ``node``, by their other attributes."""
    found: dict[tuple, float] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    attributes = dict(point.attributes)
                    if attributes.pop("stelar.node") == node:
                        assert attributes.pop("messaging.system") == "stelar"
                        found[tuple(sorted(attributes.items()))] = point.value
    return found


async def test_the_servers_figures_are_metrics_read_from_another_thread(collect):
    server = StelarServer(
        transports=["tcp"], host="127.0.0.1", tcp_port=0, max_payload_size=16, otel={"enabled": True}
    )
    server.on_ack("echo", lambda ctx: ctx.data)
    await server.start()
    node = server.cluster.node_id
    client = await connect_client(server, "tcp")
    await client.join("lobby")
    assert await client.request("echo", 1) == 1
    with pytest.raises(Exception, match="payload_too_large"):
        await client.request("echo", "x" * 40)
    server.hub.count("api_requests:unauthorized", 2)  # as a plugin does, through its view
    stats = server.get_stats()
    data = await collect()
    assert points(data, "messaging.client.consumed.messages", node) == {(): stats.total_messages_received}
    assert points(data, "messaging.client.sent.messages", node) == {(): stats.total_messages_sent}
    assert points(data, "stelar.connections", node) == {(("stelar.transport", "tcp"),): 1}
    assert points(data, "stelar.rooms", node) == {(): 1}
    assert points(data, "stelar.payload_too_large", node) == {(): 1}
    assert points(data, "stelar.ack_latency.count", node) == {
        (): 1
    }  # (the refused one was not answered by a handler)
    assert (
        points(data, "stelar.counters", node)[
            (("stelar.counter", "api_requests"), ("stelar.outcome", "unauthorized"))
        ]
        == 2
    )
    client.close()
    await server.stop()
    after = await collect()
    assert points(after, "stelar.rooms", node) == {}


async def test_with_metrics_off_a_server_is_not_observed(collect):
    server = StelarServer(
        transports=["tcp"], host="127.0.0.1", tcp_port=0, otel={"enabled": True, "metrics": False}
    )
    await server.start()
    data = await collect()
    assert points(data, "stelar.uptime", server.cluster.node_id) == {}
    await server.stop()
