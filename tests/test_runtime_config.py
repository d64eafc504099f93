"""update_config() on a running server, option by option, over real transports."""

import asyncio

import pytest

from stelar_core import AckTimeout, ConfigError, ErrorCode, NotConnected
from stelar_core.config import RESTART_OPTIONS
from stelar_core.testing import FakeClock, TestClient, connect_client
from stelar_ws import HandshakeRejected


@pytest.fixture
async def server(stelar_server_factory):
    return await stelar_server_factory(port=0, tcp_port=0, rate_limit=None)


async def test_max_connections_lowered_below_the_count_drops_nobody(server):
    clients = [await connect_client(server, "tcp") for _ in range(3)]
    server.update_config(max_connections=1)
    with pytest.raises(NotConnected, match=ErrorCode.SERVER_FULL):
        await connect_client(server, "tcp")
    assert server.get_stats().active_connections == 3
    server.update_config(max_connections=10)
    clients.append(await connect_client(server, "tcp"))
    for client in clients:
        client.close()


async def test_max_connections_per_ip(server):
    first = await connect_client(server, "ws", local_address="127.0.0.5")
    server.update_config(max_connections_per_ip=1)
    with pytest.raises(HandshakeRejected) as info:
        await connect_client(server, "ws", local_address="127.0.0.5")
    assert info.value.status == 429
    first.close()


async def test_room_limits(server):
    client = await connect_client(server, "tcp")
    server.update_config(max_rooms_per_client=1, max_rooms=10)
    assert await client.join("a") == {"ok": True}
    assert (await client.join("b"))["error"]["code"] == ErrorCode.MAX_ROOMS_PER_CLIENT
    server.update_config(max_rooms_per_client=5, max_rooms=1)
    assert (await client.join("b"))["error"]["code"] == ErrorCode.MAX_ROOMS
    client.close()


async def test_payload_and_event_name_limits(server):
    client = await connect_client(server, "tcp")
    server.update_config(max_payload_size=10, max_event_name_length=4)
    client.emit("ok", "x" * 20)
    assert (await client.next_error())[0] == ErrorCode.PAYLOAD_TOO_LARGE
    client.emit("toolong", 1)
    assert (await client.next_error())[0] == ErrorCode.INVALID_EVENT
    client.close()


async def test_rate_limits(server):
    server.update_config(
        rate_limit={"max_points": 1, "window": 60}, hooks={"on_rate_limit_exceeded": lambda: False}
    )
    client = await connect_client(server, "tcp")
    client.emit("a")
    client.emit("b")
    assert (await client.next_error())[0] == ErrorCode.RATE_LIMITED
    server.update_config(rate_limit=None)
    server.on_ack("free", lambda ctx: True)
    assert await client.request("free") is True
    client.close()


async def test_allowed_origins(server):
    server.update_config(allowed_origins=["https://new.example"])
    with pytest.raises(HandshakeRejected):
        await connect_client(server, "ws", headers={"Origin": "https://old.example"})
    client = await connect_client(server, "ws", headers={"Origin": "https://new.example"})
    client.close()


async def test_hooks_are_swapped(server):
    joined = []
    server.update_config(hooks={"on_client_join_room": lambda room: joined.append(room)})
    client = await connect_client(server, "tcp")
    await client.join("r")
    server.update_config(hooks={})
    await client.join("s")
    assert joined == ["r"]
    client.close()


async def test_heartbeat_timings(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(clock=clock, transports=["tcp"])
    silent = await connect_client(server, "tcp", client=TestClient(auto_pong=False))
    server.update_config(heartbeat_interval=5, heartbeat_timeout=10)
    clock.advance(5)  # the new interval applies now, not after the 30 s sweep already waiting
    await silent.wait_until(lambda: silent.pings_received == 1)
    clock.advance(10)  # silent since it connected: past the 10 s timeout at the sweep of t+15
    assert await silent.wait_closed() == (1011, "heartbeat timeout")


async def test_connect_and_ack_timeouts(stelar_server_factory):
    clock = FakeClock()
    server = await stelar_server_factory(clock=clock, transports=["tcp"])
    server.update_config(connect_timeout=0.1, ack_timeout=0.05)
    lazy = await connect_client(server, "tcp", handshake=False)
    clock.advance(0.1)
    assert (await lazy.wait_closed())[0] == 1008
    client = await connect_client(server, "tcp")
    asked = asyncio.Event()

    async def slow(data):
        asked.set()
        await asyncio.Event().wait()

    client.on_ack("slow", slow)
    request = asyncio.ensure_future(server.request(client.id, "slow", None))
    await asked.wait()
    clock.advance(0.05)
    with pytest.raises(AckTimeout, match=r"within 0\.05s"):
        await request
    client.close()


def test_what_needs_a_restart_says_so():
    from stelar_core import StelarServer

    server = StelarServer(transports=["memory"])
    for option in sorted(RESTART_OPTIONS):
        with pytest.raises(ConfigError, match=f"options {option} cannot change on a built server"):
            server.update_config(**{option: getattr(server.config, option)})
