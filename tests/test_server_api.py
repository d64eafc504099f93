"""The StelarServer facade: stats, runtime configuration, lifecycle."""

import asyncio
import signal

import pytest

from stelar_core import ConfigError, PluginError, RateLimit, StelarServer, hookimpl


async def test_stats_have_the_seed_fields_and_count_traffic(stelar_server, stelar_client_factory):
    stelar_server.on("e", lambda ctx: ctx.emit("r", 1))
    a = await stelar_client_factory(stelar_server)
    b = await stelar_client_factory(stelar_server)
    await a.join("room")
    a.emit("e")
    await a.next_event()
    b.close()
    await b.wait_closed()
    stats = stelar_server.get_stats()
    assert stats.total_connections == 2
    assert stats.active_connections == 1
    assert stats.connections_by_transport == {"memory": 1}
    assert stats.total_rooms == 1
    # received: 2 connects, 1 join, 1 event; sent: 2 connect answers, 1 join answer, 1 event
    assert stats.total_messages_received == 4
    assert stats.total_messages_sent == 4
    assert stats.total_bytes_received > 0 and stats.total_bytes_sent > 0
    assert stats.memory_mb > 0 and stats.memory_usage["rss"] > 0
    assert stats.uptime_ms >= 0 and stats.uptime_seconds >= 0
    assert stats.rate_limiter_entries == 1
    data = stats.to_dict()
    assert data["memory_connections"] == 1 and data["transports"] == {"memory": {"connections": 1}}
    assert stats.ws_connections == 0 and stats.tcp_connections == 0  # the seed's names, any transport
    for field in ("invalid_messages", "rate_limited", "payload_too_large", "handler_errors", "pending_acks"):
        assert data[field] == 0


async def test_update_config_changes_limits_of_the_running_server(stelar_server, stelar_client_factory):
    first = await stelar_client_factory(stelar_server)
    second = await stelar_client_factory(stelar_server)
    stelar_server.update_config(max_connections=1, max_rooms_per_client=1)
    # Lowering the limit drops nobody but refuses the next one.
    assert stelar_server.get_stats().active_connections == 2
    with pytest.raises(Exception, match="server is full"):
        await stelar_client_factory(stelar_server)
    await first.join("a")
    assert (await first.join("b"))["error"]["code"] == "max_rooms_per_client"
    assert not second.closed.done()


async def test_update_config_is_atomic(stelar_server):
    before = stelar_server.get_config()
    with pytest.raises(ConfigError, match="max_rooms"):
        stelar_server.update_config(max_connections=5, max_rooms=0)
    with pytest.raises(ConfigError, match="unknown option"):
        stelar_server.update_config(max_connections=5, maxRooms=3)
    with pytest.raises(PluginError, match="unknown hook"):
        stelar_server.update_config(max_connections=5, hooks={"nope": print})
    assert stelar_server.get_config() == before


def test_options_that_need_a_restart_say_so():
    server = StelarServer(transports=["memory"])
    with pytest.raises(ConfigError, match=r"rate_limiter, ws\.port cannot change on a built server"):
        server.update_config(port=1, rate_limiter="token-bucket", max_rooms=5)
    assert server.config.max_rooms == 10_000


async def test_update_config_swaps_hooks_and_rate_limits(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(rate_limit=RateLimit(1, 60.0))
    server.on("e", lambda ctx: ctx.emit("ok"))
    kept = []
    server.update_config(
        rate_limit={"max_points": 2, "window": 60.0},
        hooks={"on_rate_limit_exceeded": lambda client_id: kept.append(client_id) or False},
    )
    client = await stelar_client_factory(server)
    for _ in range(3):
        client.emit("e")
    assert (await client.next_event()).event == "ok"
    assert (await client.next_event()).event == "ok"
    assert (await client.next_error())[0] == "rate_limited"
    assert kept == [client.id]
    server.update_config(hooks={}, event_rate_limits={"chat": {"max_points": 3}})
    assert not server.plugin_manager.implements("stelar_on_rate_limit_exceeded")
    assert server.get_config()["event_rate_limits"] == {"chat": {"max_points": 3, "window": 1.0}}


def test_get_config_redacts_and_reports_runtime_state():
    server = StelarServer(transports=["memory"], redis={"url": "redis://:hunter2@127.0.0.1:1/0"})
    server.set_event_rate_limit("voice", RateLimit(50, 1.0))
    config = server.get_config()
    assert config["redis"]["url"] == "***" and "hunter2" not in repr(config)
    assert config["event_rate_limits"] == {"voice": {"max_points": 50, "window": 1.0}}
    assert config["has_custom_rate_limiter"] is False
    assert server.remove_event_rate_limit("voice") is True
    assert server.remove_event_rate_limit("voice") is False


async def test_async_with_starts_and_stops_cleanly():
    before = asyncio.all_tasks()
    async with StelarServer(transports=["memory"]) as server:
        assert server.running
        assert server.addresses["memory"][0].startswith("memory://")
        assert server.get_port() is None
        with pytest.raises(RuntimeError, match="already running"):
            await server.start()
    assert not server.running
    assert asyncio.all_tasks() == before
    await server.stop()  # stopping twice is harmless


async def test_stop_closes_every_client_with_going_away(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory()
    clients = [await stelar_client_factory(server) for _ in range(3)]
    await server.stop()
    for client in clients:
        assert await client.wait_closed() == (1001, "server shutting down")
        assert client.disconnect == {"code": 1001, "reason": "server shutting down"}
    assert server.get_stats().active_connections == 0


async def test_stop_answers_the_acks_in_flight_before_going_away(
    stelar_server_factory, stelar_client_factory
):
    server = await stelar_server_factory(shutdown_timeout=5)
    started, release = asyncio.Event(), asyncio.Event()
    stopping = asyncio.Event()
    server.plugin_manager.register(_StoppingProbe(stopping), name="probe")

    @server.on_ack("work")
    async def work(ctx):
        started.set()
        await release.wait()
        return "done"

    client = await stelar_client_factory(server)
    answer = asyncio.ensure_future(client.request("work", timeout=10))
    await asyncio.wait_for(started.wait(), 5)
    stop = asyncio.ensure_future(server.stop())
    await asyncio.wait_for(stopping.wait(), 5)
    assert server.state == "stopping" and not server.accepting
    assert not client.closed.done()  # still connected while its request is in flight
    release.set()
    assert await answer == "done"
    assert await client.wait_closed() == (1001, "server shutting down")
    await stop


async def test_stop_cancels_handlers_past_shutdown_timeout(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(shutdown_timeout=0.05)
    started, cancelled = asyncio.Event(), asyncio.Event()

    @server.on("hang")
    async def hang(ctx):
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = await stelar_client_factory(server)
    client.emit("hang")
    await asyncio.wait_for(started.wait(), 5)
    await server.stop()
    assert cancelled.is_set()


async def test_graceful_shutdown_handles_signals_and_restores_the_previous_handlers():
    def previous(signum, frame):
        return None

    original = signal.signal(signal.SIGTERM, previous)
    try:
        server = StelarServer(transports=["memory"], graceful_shutdown=True)
        stopping = asyncio.Event()
        server.plugin_manager.register(_StoppingProbe(stopping), name="probe")
        await server.start()
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(stopping.wait(), 5)
        await server._signal_stop
        assert not server.running
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, original)


class _StoppingProbe:
    def __init__(self, event):
        self.event = event

    @hookimpl
    def stelar_on_server_started(self, server):
        assert server.running

    @hookimpl
    def stelar_on_server_stopping(self, server):
        self.event.set()


async def test_server_started_and_stopping_hooks(stelar_hook_recorder):
    server = StelarServer(transports=["memory"], plugins=[_StoppingProbe(asyncio.Event())])
    recorder = stelar_hook_recorder(server)
    await server.start()
    await server.stop()
    assert [call.name for call in recorder.calls if call.name.startswith("stelar_on_server")] == [
        "stelar_on_server_started",
        "stelar_on_server_stopping",
    ]


def test_the_ack_latency_histogram_has_fixed_buckets():
    from stelar_core.hub.stats import LATENCY_BUCKETS, LatencyHistogram

    histogram = LatencyHistogram()
    for seconds in (0.0001, 0.0005, 0.003, 99.0):
        histogram.observe(seconds)
    snapshot = histogram.snapshot()
    assert snapshot.bounds == LATENCY_BUCKETS
    assert snapshot.counts[0] == 2  # at most 0.5 ms, the bound included
    assert snapshot.counts[LATENCY_BUCKETS.index(0.005)] == 1
    assert snapshot.counts[-1] == 1  # above every bound
    assert snapshot.total == 4 and snapshot.sum == pytest.approx(99.0036)


async def test_the_server_state_follows_its_lifecycle():
    server = StelarServer(transports=["memory"])
    assert (server.state, server.accepting) == ("stopped", False)
    await server.start()
    assert (server.state, server.accepting) == ("running", True)
    await server.stop()
    assert (server.state, server.accepting) == ("stopped", False)


def test_peak_rss_is_never_below_rss(monkeypatch):
    import resource

    from stelar_core.hub import stats

    # The kernel's sample, taken before memory grew: ru_maxrss (the third field) is 1 KiB. (A
    # real struct_rusage: compiled, the module checks the type getrusage is declared to return.)
    lagging = resource.struct_rusage((0.0, 0.0, 1, *[0] * 13))
    monkeypatch.setattr(resource, "getrusage", lambda who: lagging)
    memory = stats.memory_usage()
    assert memory["rss"] > 1024 and memory["peak_rss"] >= memory["rss"]
