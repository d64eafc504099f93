"""stelar-asgi behind real ASGI servers: the transport conformance suite under uvicorn and
under hypercorn, and stelar mounted in FastAPI and Starlette applications."""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import json
from pathlib import Path

import pytest
from asgi_support import SERVERS, AsgiTransportPlugin, running

from stelar_asgi import AsgiEndpoint
from stelar_core import NotConnected, StelarClient, StelarServer
from stelar_core.testing import eventually
from stelar_core.testing.conformance import TransportConformance
from stelar_core.testing.http import http_get as get


class TestAsgiUnderUvicorn(TransportConformance):
    transport = "asgi"
    server_options = {"plugins": [AsgiTransportPlugin("uvicorn")], "port": None}


class TestAsgiUnderHypercorn(TransportConformance):
    transport = "asgi"
    server_options = {"plugins": [AsgiTransportPlugin("hypercorn")], "port": None}


pytestmark = pytest.mark.one_loop


# ---------------------------------------------------------------- applications (docs/asgi.md)

EXAMPLES = Path(__file__).parents[3] / "examples"
# What each ASGI server sends its open WebSockets when it shuts down (before the lifespan ends).
ASGI_SERVER_CLOSE = {"uvicorn": 1012, "hypercorn": 1011}


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", SERVERS)
async def test_fastapi_example_shares_rooms_with_native_tcp_and_sees_the_apps_session(kind):
    app, stelar = load_example("asgi_fastapi").create_app(tcp_port=0)
    async with running(app, kind, lifespan=True) as port:
        assert stelar.running  # the application's lifespan started it
        url = f"ws://127.0.0.1:{port}/realtime/"
        ann = StelarClient(url, headers={"Cookie": "session=s3cret"}, reconnection=False)
        service = StelarClient(stelar.addresses["tcp"][0], auth={"service": "pricing"}, reconnection=False)
        heard: asyncio.Queue = asyncio.Queue()
        ann.on("chat", lambda data: heard.put_nowait(("ann", data)))
        service.on("chat", lambda data: heard.put_nowait(("service", data)))
        async with ann, service:
            assert await ann.join_room("general") and await service.join_room("general")
            service.emit("chat", "ACME 42")
            assert await asyncio.wait_for(heard.get(), 5) == ("ann", {"from": "pricing", "text": "ACME 42"})
            ann.emit("chat", "thanks")
            assert await asyncio.wait_for(heard.get(), 5) == ("service", {"from": "ann", "text": "thanks"})
            status, _, body = await asyncio.to_thread(get, port, "/api/online")
            assert status == 200 and json.loads(body) == {"online": ["ann", "pricing"]}
            assert stelar.get_stats().connections_by_transport == {"asgi": 1, "tcp": 1}
            # Without the application's session, stelar's middleware refuses the connection.
            stranger = StelarClient(url, reconnection=False)
            with pytest.raises(NotConnected, match="refused by middleware"):
                await stranger.connect()
            # stelar's HTTP routes, under the mount point.
            status, _, body = await asyncio.to_thread(get, port, "/realtime/stelar.js")
            assert status == 200 and body.startswith(b"// stelar.js")
            status, _, body = await asyncio.to_thread(get, port, "/realtime/health")
            assert status == 200 and json.loads(body)["connections_by_transport"] == {"asgi": 1, "tcp": 1}
            assert heard.empty()  # nothing was delivered twice
        # Clients still connected when the application stops: the ASGI server closes its
        # WebSockets itself, before the lifespan's shutdown; stelar's shutdown says going away
        # to the TCP ones.
        watchers = [
            StelarClient(url, headers={"Cookie": "session=t0ken"}, reconnection=False),
            StelarClient(stelar.addresses["tcp"][0], auth={"service": "audit"}, reconnection=False),
        ]
        closed = [asyncio.get_running_loop().create_future() for _ in watchers]
        for watcher, done in zip(watchers, closed, strict=True):
            watcher.on("disconnect", lambda info, done=done: done.done() or done.set_result(info["code"]))
            await watcher.connect()
    try:
        assert not stelar.running  # the application's lifespan stopped it
        codes = await asyncio.wait_for(asyncio.gather(*closed), 5)
        assert codes == [ASGI_SERVER_CLOSE[kind], 1001]
    finally:
        for watcher in watchers:
            await watcher.disconnect()


@pytest.mark.parametrize("kind", SERVERS)
async def test_starlette_example_serves_stelar_alone(kind):
    app, stelar = load_example("asgi_starlette").create_app()
    async with running(app, kind, lifespan=True) as port:
        async with StelarClient(f"ws://127.0.0.1:{port}/ws/", reconnection=False) as client:
            assert await client.request("echo", {"n": 1}) == {"n": 1}
            assert stelar.get_stats().connections_by_transport == {"asgi": 1}
        assert (await asyncio.to_thread(get, port, "/"))[0] == 200
        assert (await asyncio.to_thread(get, port, "/ws/stelar.d.ts"))[0] == 200
        assert (await asyncio.to_thread(get, port, "/ws/nothing-here"))[0] == 404
    assert not stelar.running


@pytest.mark.parametrize("kind", SERVERS)
async def test_refused_upgrades_get_an_http_answer(kind):
    server = StelarServer(transports=[], allowed_origins=["https://app.example"], max_connections=1)
    async with server, running(AsgiEndpoint(server.hub), kind) as port:
        url = f"ws://127.0.0.1:{port}/"
        with pytest.raises(NotConnected, match="403"):
            await StelarClient(url, origin="https://evil.example", reconnection=False).connect()
        async with StelarClient(url, origin="https://app.example", reconnection=False):
            with pytest.raises(NotConnected, match="503"):
                await StelarClient(url, origin="https://app.example", reconnection=False).connect()
        # A client that does not speak stelar.v1 is told so.
        status, _, body = await asyncio.to_thread(raw_upgrade, port)
        assert status == 400 and b"stelar.v1" in body


def raw_upgrade(port: int) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(
            "GET",
            "/",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
                "Origin": "https://app.example",
            },
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


async def test_a_browser_page_of_the_fastapi_app_talks_to_the_mounted_stelar(browser):
    app, stelar = load_example("asgi_fastapi").create_app(tcp_port=0)
    async with running(app, "uvicorn", lifespan=True) as port:
        page = await browser.new_page()
        # A page of the application, with its session cookie; the client from the mount point.
        origin = f"http://127.0.0.1:{port}"
        await page.context.add_cookies([{"name": "session", "value": "s3cret", "url": origin}])
        await page.goto(f"{origin}/api/online")
        service = StelarClient(stelar.addresses["tcp"][0], auth={"service": "pricing"}, reconnection=False)
        heard: asyncio.Queue = asyncio.Queue()
        service.on("chat", heard.put_nowait)
        async with service:
            await service.join_room("general")
            await page.evaluate(
                """async (port) => {
                    const { StelarClient } = await import("/realtime/stelar.js");
                    window.client = new StelarClient(`ws://127.0.0.1:${port}/realtime/`);
                    window.got = [];
                    client.on("chat", (data) => got.push(data));
                    await client.connect();
                    await client.joinRoom("general");
                    client.emit("chat", "from the page");
                }""",
                port,
            )
            # The application's session cookie went with the upgrade: stelar knows the user.
            assert await asyncio.wait_for(heard.get(), 5) == {"from": "ann", "text": "from the page"}
            service.emit("chat", "to the page")
            got = await eventually(lambda: _page_got(page), what="the page got the answer")
            assert got == [{"from": "pricing", "text": "to the page"}]
            await page.evaluate("client.disconnect()")
        await page.close()


async def _page_got(page):
    return await page.evaluate("got") or None
