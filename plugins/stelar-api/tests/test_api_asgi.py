"""The server API mounted in an ASGI application through stelar-asgi, under real uvicorn and
hypercorn: the same routes, the request body read from ASGI (capped)."""

from __future__ import annotations

import asyncio

import pytest
from api_support import KEYS, api, result
from asgi_support import SERVERS, running

from stelar_asgi import AsgiEndpoint
from stelar_core import StelarClient, StelarServer


@pytest.mark.parametrize("kind", SERVERS)
async def test_the_api_under_an_asgi_server(kind):
    server = StelarServer(
        transports=["tcp"],
        host="127.0.0.1",
        tcp_port=0,
        api={"enabled": True, "keys": KEYS},
        max_frame_size=4096,
        max_payload_size=4000,
    )
    async with server, running(AsgiEndpoint(server.hub), kind) as port:
        client = StelarClient(server.addresses["tcp"][0], reconnection=False)
        got: asyncio.Queue = asyncio.Queue()
        client.on("news", got.put_nowait)
        async with client:
            await client.join_room("lobby")
            await result(port, "publish", {"room": "lobby", "event": "news", "data": "from asgi"})
            assert await asyncio.wait_for(got.get(), 5) == "from asgi"
            assert (await result(port, "members", {"room": "lobby"}))["members"] == [client.id]
            assert (await api(port, "rooms", key=None))[0] == 401
            status, _, body = await api(port, "publish", body=b"x" * 5000)  # over max_frame_size
            assert status == 413 and b"at most 4096" in body
