"""A WebSocket client and a TCP client on one server: same rooms, broadcasts, ACK handlers,
middleware and stats."""

import asyncio

import pytest

from stelar_core.testing import ReceivedEvent, connect_client


async def test_ws_and_tcp_clients_share_everything(stelar_server_factory):
    server = await stelar_server_factory(port=0, tcp_port=0)
    admitted = []

    @server.use
    def who(ctx, next):
        admitted.append((ctx.protocol, ctx.auth["name"], ctx.req is not None))
        next()

    server.on_ack("whoami", lambda ctx: {"protocol": ctx.protocol, "rooms": sorted(ctx.rooms)})

    @server.on("say")
    def say(ctx):
        ctx.to("lobby", "said", {"by": ctx.protocol, "text": ctx.data})

    browser = await connect_client(server, "ws", auth={"name": "browser"})
    service = await connect_client(server, "tcp", auth={"name": "service"})
    assert admitted == [("ws", "browser", True), ("tcp", "service", False)]
    await browser.join("lobby")
    await service.join("lobby")

    assert await browser.request("whoami") == {"protocol": "ws", "rooms": ["lobby"]}
    assert await service.request("whoami") == {"protocol": "tcp", "rooms": ["lobby"]}

    browser.emit("say", "from the browser")
    service.emit("say", "from the service")
    for client in (browser, service):
        got = [await client.next_event(), await client.next_event()]
        assert got == [
            ReceivedEvent("said", {"by": "ws", "text": "from the browser"}),
            ReceivedEvent("said", {"by": "tcp", "text": "from the service"}),
        ]

    server.broadcast_binary("blob", b"\x00\x01")
    assert await browser.next_event() == ReceivedEvent("blob", b"\x00\x01", True)
    assert await service.next_event() == ReceivedEvent("blob", b"\x00\x01", True)

    browser.on_ack("ping", lambda data: "ws pong")
    service.on_ack("ping", lambda data: "tcp pong")
    answers = await asyncio.gather(server.request(browser.id, "ping"), server.request(service.id, "ping"))
    assert answers == ["ws pong", "tcp pong"]

    stats = server.get_stats()
    assert stats.connections_by_transport == {"ws": 1, "tcp": 1}
    assert stats.ws_connections == 1 and stats.tcp_connections == 1
    assert sorted(server.get_room_members("lobby")) == sorted([browser.id, service.id])
    browser.close()
    service.close()


@pytest.mark.parametrize("transport", ["ws", "tcp"])
async def test_a_client_that_leaves_is_forgotten(stelar_server_factory, transport):
    server = await stelar_server_factory(port=0, tcp_port=0)
    gone = asyncio.Event()
    codes = []

    @server.on_disconnect
    def bye(ctx):
        codes.append(ctx.data["code"])
        gone.set()

    client = await connect_client(server, transport)
    await client.join("r")
    client.close(1000, "done")
    await asyncio.wait_for(gone.wait(), 5)
    assert codes == [1000]
    assert server.get_rooms() == [] and server.get_clients() == []
