"""stelar-health over real HTTP, on the WebSocket port and on its own health_port."""

import asyncio
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stelar_core import NotConnected, StelarServer, hookimpl
from stelar_core.plugin_api import HttpResponse, Position, TransportProvider, hot_path
from stelar_core.testing import connect_client
from stelar_core.testing.http import http_call as call


@pytest.fixture(params=["ws port", "health_port"])
async def health_server(request, stelar_server_factory):
    """A server whose health routes are reached on the WebSocket port or on health_port (then
    with no WebSocket transport at all, as a TCP-only service)."""

    async def make(**options):
        if request.param == "ws port":
            server = await stelar_server_factory(port=0, tcp_port=0, **options)
            return server, server.get_port("ws")
        server = await stelar_server_factory(port=None, tcp_port=0, health_port=0, **options)
        assert "ws" not in server.addresses
        return server, server.get_port("http")

    return make


async def test_health_body_has_the_seed_fields(health_server):
    server, port = await health_server()
    client = await connect_client(server, "tcp")
    await client.join("lobby")
    status, headers, body = await call(port, "/health")
    assert status == 200 and headers["content-type"] == "application/json"
    data = json.loads(body)
    assert data["status"] == "ok"
    assert data["hot_path"] == hot_path()  # compiled, or pure Python and why
    for field in (
        "total_connections",
        "active_connections",
        "total_messages_received",
        "total_messages_sent",
        "total_rooms",
        "uptime_ms",
        "uptime_seconds",
        "connections_by_transport",
        "transports",
        "tcp_connections",
        "memory_mb",
        "memory_usage",
        "rate_limiter_entries",
    ):
        assert field in data, field
    assert data["active_connections"] == 1 and data["tcp_connections"] == 1 and data["total_rooms"] == 1
    # Each running transport's own figures, and the seed's <name>_connections for each.
    assert data["transports"]["tcp"]["connections"] == 1
    assert all(f"{name}_connections" in data for name in data["transports"])
    assert data["memory_usage"]["rss"] > 0
    client.close()


async def test_live_and_ready(health_server):
    _server, port = await health_server()
    assert (await call(port, "/health/live"))[0] == 200
    status, _, body = await call(port, "/health/ready")
    assert status == 200 and json.loads(body) == {"status": "ready"}


async def test_during_shutdown_readiness_is_503_and_the_main_listeners_are_closed(stelar_server_factory):
    stopping = asyncio.Event()
    server = await stelar_server_factory(
        port=0,
        tcp_port=0,
        health_port=0,
        shutdown_timeout=5,
        hooks={"on_server_stopping": lambda: stopping.set()},
    )
    started, release = asyncio.Event(), asyncio.Event()

    @server.on("work")
    async def work(ctx):
        started.set()
        await release.wait()

    client = await connect_client(server, "tcp")
    client.emit("work")
    await asyncio.wait_for(started.wait(), 5)
    ws_port, health_port = server.get_port("ws"), server.get_port("http")
    stop = asyncio.ensure_future(server.stop())
    await asyncio.wait_for(stopping.wait(), 5)
    status, _, body = await call(health_port, "/health")
    assert status == 503 and json.loads(body)["status"] == "stopping"
    status, _, body = await call(health_port, "/health/ready")
    assert status == 503 and json.loads(body) == {"status": "stopping"}
    assert (await call(health_port, "/health/live"))[0] == 200
    with pytest.raises(ConnectionRefusedError):  # no new connections on the main ports
        await call(ws_port, "/health/ready")
    release.set()
    await stop
    with pytest.raises(OSError):
        await call(health_port, "/health")


async def test_health_endpoint_can_move_or_be_disabled(stelar_server_factory):
    moved = await stelar_server_factory(port=0, health_endpoint="/status")
    port = moved.get_port("ws")
    assert (await call(port, "/status"))[0] == 200
    assert (await call(port, "/status/ready"))[0] == 200
    assert (await call(port, "/health"))[0] == 404
    disabled = await stelar_server_factory(port=0, health_endpoint=False)
    assert (await call(disabled.get_port("ws"), "/health"))[0] == 404
    assert (await call(disabled.get_port("ws"), "/metrics"))[0] == 404


async def test_cors_for_allowed_and_refused_origins(health_server):
    _server, port = await health_server(allowed_origins=["https://dash.example"])
    _, headers, _ = await call(port, "/health", headers={"Origin": "https://dash.example"})
    assert headers["access-control-allow-origin"] == "https://dash.example"
    _, headers, _ = await call(port, "/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers
    status, headers, body = await call(
        port,
        "/health",
        "OPTIONS",
        {
            "Origin": "https://dash.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert status == 204 and body == b""
    assert headers["access-control-allow-methods"] == "GET, OPTIONS"
    assert headers["access-control-allow-headers"] == "authorization"
    status, headers, _ = await call(port, "/health", "OPTIONS", {"Origin": "https://evil.example"})
    assert status == 204 and "access-control-allow-methods" not in headers


async def test_cors_is_open_when_origins_are_unrestricted(health_server):
    _server, port = await health_server()
    _, headers, _ = await call(port, "/metrics", headers={"Origin": "https://anywhere.example"})
    assert headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_custom_health_handler_replaces_body_and_status(health_server, kind):
    def sync_handler(request, stats):
        return 503, {"status": "degraded", "database": "down", "clients": stats.active_connections}

    async def async_handler(request, stats):
        return HttpResponse(200, b"custom", {"Content-Type": "text/plain"})

    handler = sync_handler if kind == "sync" else async_handler
    _server, port = await health_server(custom_health_handler=handler)
    status, headers, body = await call(port, "/health")
    if kind == "sync":
        assert status == 503 and json.loads(body) == {"status": "degraded", "database": "down", "clients": 0}
    else:
        assert (status, body, headers["content-type"]) == (200, b"custom", "text/plain")


async def test_a_raising_custom_handler_gives_500_json_and_the_endpoint_lives(health_server):
    calls = []

    def flaky(request, stats):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database unreachable")
        return {"status": "ok"}

    _server, port = await health_server(custom_health_handler=flaky)
    status, _, body = await call(port, "/health")
    assert status == 500
    assert json.loads(body)["error"] == {"code": "health_handler_error", "message": "database unreachable"}
    assert (await call(port, "/health"))[:3:2] == (200, b'{"status":"ok"}')


async def test_metrics_read_back_by_a_prometheus_parser(health_server):
    server, port = await health_server(rate_limit={"max_points": 5, "window": 60})
    server.on_ack("echo", lambda ctx: ctx.data)
    clients = [await connect_client(server, "tcp") for _ in range(3)]
    for client in clients:
        await client.join("room")
    for n in range(4):
        assert await clients[0].request("echo", n) == n
    for _ in range(2):
        clients[1].emit("spam")  # 1 join + 2 events + ... stays under 5
    status, headers, body = await call(port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    stats = server.get_stats()
    assert samples[("stelar_connections", (("transport", "tcp"),))] == 3
    assert samples[("stelar_connections_accepted_total", ())] == 3
    assert samples[("stelar_rooms", ())] == 1
    assert samples[("stelar_messages_received_total", ())] == stats.total_messages_received
    assert samples[("stelar_messages_sent_total", ())] == stats.total_messages_sent
    assert samples[("stelar_bytes_received_total", ())] == stats.total_bytes_received
    assert samples[("stelar_ack_latency_seconds_count", ())] == 4
    assert samples[("stelar_ack_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert samples[("stelar_rate_limited_total", ())] == 0
    assert samples[("stelar_slow_consumers_total", ())] == 0
    for client in clients:
        client.close()


async def test_recoveries_show_in_metrics_by_outcome(health_server):
    server, port = await health_server(rooms={"feed": {"history_size": 2}})
    client = await connect_client(server, "tcp")
    epoch = (await client.join("feed"))["position"]["epoch"]
    for n in range(3):
        server.to("feed", "n", n)
    for _ in range(3):
        await client.next_event()
    await client.join("feed", since=Position(epoch, 1))  # 2 missed, both kept
    await client.join("feed", since=Position(epoch, 0))  # 3 missed, 2 kept
    await client.join("feed", since=Position("another", 0))
    _, _, body = await call(port, "/metrics")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    assert samples[("stelar_recoveries_total", (("outcome", "recovered"),))] == 1
    assert samples[("stelar_recoveries_total", (("outcome", "history_lost"),))] == 1
    assert samples[("stelar_recoveries_total", (("outcome", "epoch_changed"),))] == 1
    assert samples[("stelar_replayed_messages_total", ())] == 2
    assert samples[("stelar_conflated_messages_total", ())] == 0 and samples[("stelar_lossy_queued", ())] == 0
    client.close()


async def test_a_plugins_counters_by_outcome_show_in_metrics(health_server):
    server, port = await health_server()
    plugin_view = server.view  # the server as hooks and routes see it
    plugin_view.count("api_requests:unauthorized", 2)
    plugin_view.count("api_requests:ok")
    plugin_view.count("api_requests:ok")
    _, _, body = await call(port, "/metrics")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    assert samples[("stelar_api_requests_total", (("outcome", "unauthorized"),))] == 2
    assert samples[("stelar_api_requests_total", (("outcome", "ok"),))] == 2


async def test_refusals_and_rate_limits_show_in_metrics(stelar_server_factory):
    server = await stelar_server_factory(
        port=0, tcp_port=0, max_connections=1, rate_limit={"max_points": 1, "window": 60}
    )
    first = await connect_client(server, "tcp")
    with pytest.raises(NotConnected, match="server_full"):
        await connect_client(server, "tcp")
    first.emit("a")
    first.emit("b")
    await first.wait_closed()
    _, _, body = await call(server.get_port("ws"), "/metrics")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("stelar_connections_refused_total", (("reason", "server_full"),))] == 1
    assert samples[("stelar_rate_limited_total", ())] == 1


async def test_two_servers_in_one_process_have_their_own_metrics(stelar_server_factory):
    a = await stelar_server_factory(port=0)
    b = await stelar_server_factory(port=0)
    await connect_client(a, "ws")
    bodies = [(await call(s.get_port("ws"), "/metrics"))[2].decode() for s in (a, b)]
    assert 'stelar_connections{transport="ws"} 1.0' in bodies[0]
    assert 'stelar_connections{transport="ws"} 0.0' in bodies[1]


def test_health_port_without_the_plugin_names_the_distribution():
    from stelar_core import ConfigError

    with pytest.raises(ConfigError, match=r"option 'health_port'.*pip install stelar-health"):
        StelarServer(port=None, health_port=0, block_plugins=["health"])


async def test_the_health_port_refuses_garbage_and_carries_on(stelar_server_factory):
    server = await stelar_server_factory(port=None, tcp_port=0, health_port=0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.get_port("http"))
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), 5)
    assert response.startswith(b"HTTP/1.1 400")
    writer.close()
    assert (await call(server.get_port("http"), "/health/live"))[0] == 200


class GateTransport:
    """A transport whose start waits for the test: the server is 'starting' meanwhile."""

    name = "gate"

    def __init__(self, hub, entered, release):
        self._entered, self._release = entered, release

    @property
    def addresses(self):
        return []

    async def start(self):
        self._entered.set()
        await self._release.wait()

    def stats(self):
        return {}

    async def stop_accepting(self):
        return None

    async def stop(self):
        return None


class Gate:
    def __init__(self):
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    @hookimpl
    def stelar_register_transports(self, register):
        register("gate", TransportProvider(lambda ctx: GateTransport(ctx.hub, self.entered, self.release)))


async def test_while_starting_ready_and_health_say_503_starting():
    gate = Gate()
    server = StelarServer(host="127.0.0.1", port=0, transports=["ws", "gate"], plugins=[gate])
    starting = asyncio.ensure_future(server.start())
    await asyncio.wait_for(gate.entered.wait(), 5)  # ws listens, the server is not started yet
    port = server.get_port("ws")
    status, _, body = await call(port, "/health/ready")
    assert status == 503 and json.loads(body) == {"status": "starting"}
    status, _, body = await call(port, "/health")
    assert status == 503 and json.loads(body)["status"] == "starting"
    gate.release.set()
    await starting
    try:
        assert (await call(port, "/health/ready"))[0] == 200
    finally:
        await server.stop()
