"""stelar.js in a real browser: Debian's Chromium driven by Playwright, pages loaded from a real
stelar server, sharing rooms and requests with the Python client over TCP."""

from __future__ import annotations

import asyncio

import pytest

from stelar_core import AckError, AckTimeout, StelarClient, StelarServer, hookimpl
from stelar_core.plugin_api import HttpResponse
from stelar_core.testing import eventually
from stelar_core.testing.http import http_get as get

pytestmark = pytest.mark.one_loop

PAGE = b"<!doctype html><meta charset=utf-8><title>stelar test page</title>"


class TestPage:
    """An empty page on the server's own origin, from which tests import /stelar.js."""

    @hookimpl
    def stelar_register_http_routes(self, register):
        register("/blank", lambda request: HttpResponse(200, PAGE, {"Content-Type": "text/html"}))


async def open_page(browser, server):
    """A page of ``server`` with ``window.stelar`` (the module) and ``window.url`` (its WebSocket)."""
    page = await browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    port = server.get_port("ws")
    await page.goto(f"http://127.0.0.1:{port}/blank")
    await page.evaluate(
        """async (port) => {
            window.stelar = await import('/stelar.js');
            window.url = `ws://127.0.0.1:${port}/`;
        }""",
        port,
    )
    page.errors = errors
    return page


async def test_the_client_files_are_served_with_caching_headers(stelar_server_factory):
    server = await stelar_server_factory(port=0)
    port = server.get_port("ws")
    status, headers, body = await asyncio.to_thread(get, port, "/stelar.js")
    assert status == 200 and body.startswith(b"// stelar.js")
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=3600" and headers["etag"].startswith('"')
    again = await asyncio.to_thread(get, port, "/stelar.js", {"If-None-Match": headers["etag"]})
    assert again[0] == 304 and again[2] == b""
    types = await asyncio.to_thread(get, port, "/stelar.d.ts")
    assert types[0] == 200 and b"export declare class StelarClient" in types[2]
    off = await stelar_server_factory(port=0, ws={"serve_client": False})
    assert (await asyncio.to_thread(get, off.get_port("ws"), "/stelar.js"))[0] == 404


async def test_connect_with_auth_and_refusal_by_middleware(stelar_server_factory, browser):
    server = await stelar_server_factory(port=0, plugins=[TestPage()])

    @server.use
    def token(ctx, next):
        if ctx.auth.get("token") == "secret":
            next()

    page = await open_page(browser, server)
    accepted = await page.evaluate(
        """async () => {
            const client = new stelar.StelarClient(url, { auth: { token: "secret" } });
            await client.connect();
            const result = { id: client.id, state: client.state, maxPayload: client.maxPayload };
            client.disconnect();
            return result;
        }"""
    )
    assert accepted["state"] == "connected" and accepted["maxPayload"] == server.config.max_payload_size
    refused = await page.evaluate(
        """async () => {
            const client = new stelar.StelarClient(url, { auth: { token: "wrong" } });
            try { await client.connect(); return "connected"; }
            catch (error) { return { name: error.name, message: error.message, state: client.state }; }
        }"""
    )
    assert refused["name"] == "NotConnected" and "unauthorized" in refused["message"]
    assert refused["state"] == "disconnected"
    assert server.get_stats().refused_connections.get("unauthorized") == 1
    assert page.errors == []


async def test_a_room_shared_with_a_python_tcp_client(stelar_server_factory, browser):
    server = await stelar_server_factory(port=0, tcp_port=0, plugins=[TestPage()])
    server.on("say", lambda ctx: ctx.to("r", "said", ctx.data, exclude=ctx.id))
    server.on("blob", lambda ctx: ctx.to_binary("r", "blob", ctx.data, exclude=ctx.id))
    page = await open_page(browser, server)
    await page.evaluate(
        """async () => {
            window.client = new stelar.StelarClient(url);
            window.got = [];
            client.on("said", (data) => got.push(["said", data]));
            client.on("blob", (data) => got.push(["blob", Array.from(data)]));
            await client.connect();
            window.joined = await client.joinRoom("r");
        }"""
    )
    joined = await page.evaluate("joined")
    assert joined == {"room": "r", "position": None, "recovered": None, "reason": None, "replayed": 0}
    python = StelarClient(server.addresses["tcp"][0])
    inbox: asyncio.Queue = asyncio.Queue()
    python.on("said", lambda data: inbox.put_nowait(("said", data)))
    python.on("blob", lambda data: inbox.put_nowait(("blob", data)))
    async with python:
        assert await python.join_room("r")
        await page.evaluate("client.emit('say', {from: 'browser', n: 1})")
        await page.evaluate("client.emitBinary('blob', new Uint8Array([1, 2, 255]))")
        assert await asyncio.wait_for(inbox.get(), 5) == ("said", {"from": "browser", "n": 1})
        assert await asyncio.wait_for(inbox.get(), 5) == ("blob", b"\x01\x02\xff")
        python.emit("say", {"from": "python"})
        python.emit_binary("blob", b"\x00\x10")
        got = await eventually(lambda: _at_least(page.evaluate("got"), 2), what="the browser got both")
        assert got == [["said", {"from": "python"}], ["blob", [0, 16]]]
    assert page.errors == []


async def _at_least(values, count):
    values = await values
    return values if len(values) >= count else None


async def test_requests_both_ways_with_errors_and_timeouts(stelar_server_factory, browser):
    server = await stelar_server_factory(port=0, plugins=[TestPage()])
    server.on_ack("double", lambda ctx: ctx.data * 2)

    def fail(ctx):
        raise ValueError("no such user")

    released = asyncio.Event()

    async def forever(ctx):
        await released.wait()  # until the test is done: the client gives up first

    server.on_ack("fail", fail)
    server.on_ack("forever", forever, concurrent=True)
    page = await open_page(browser, server)
    answers = await page.evaluate(
        """async () => {
            window.client = new stelar.StelarClient(url);
            client.onAck("triple", (n) => n * 3);
            client.onAck("refuse", () => { throw new Error("not from a browser"); });
            client.onAck("later", async (n) => { await new Promise((r) => setTimeout(r, 20)); return n; });
            client.onAck("never", () => new Promise(() => {}));
            await client.connect();
            const caught = async (promise) => {
                try { return await promise; }
                catch (e) { return { name: e.name, code: e.code, message: e.message }; }
            };
            return [
                await client.request("double", 21),
                await caught(client.request("fail", 1)),
                await caught(client.request("forever", 1, { timeout: 200 })),
                await caught(client.request("missing")),
            ];
        }"""
    )
    assert answers[0] == 42
    assert answers[1]["name"] == "AckError" and answers[1]["code"] == "handler_error"
    assert "no such user" in answers[1]["message"]
    assert answers[2]["name"] == "AckTimeout"
    assert answers[3]["code"] == "no_handler"
    client_id = await page.evaluate("client.id")
    assert await server.request(client_id, "triple", 5) == 15
    assert await server.request(client_id, "later", "x") == "x"
    with pytest.raises(AckError) as refused:
        await server.request(client_id, "refuse")
    assert refused.value.code == "handler_error" and "not from a browser" in refused.value.message
    with pytest.raises(AckError) as missing:
        await server.request(client_id, "nobody-answers-this")
    assert missing.value.code == "no_handler"
    with pytest.raises(AckTimeout):
        await server.request(client_id, "never", timeout=0.2)
    assert page.errors == []
    released.set()  # the server's stop need not wait out its shutdown timeout for the handler


async def test_max_payload_is_refused_in_the_browser(stelar_server_factory, browser):
    server = await stelar_server_factory(port=0, plugins=[TestPage()], max_payload_size=100)
    received = []
    server.on("big", lambda ctx: received.append(ctx.data))
    page = await open_page(browser, server)
    outcome = await page.evaluate(
        """async () => {
            const client = new stelar.StelarClient(url);
            await client.connect();
            let refused = null;
            try { client.emit("big", "x".repeat(200)); } catch (e) { refused = e.message; }
            client.emit("big", "small");
            return { refused, maxPayload: client.maxPayload };
        }"""
    )
    assert outcome["maxPayload"] == 100 and "the server's max_payload is 100" in outcome["refused"]
    await eventually(lambda: received == ["small"], what="only the small one arrived")


async def test_the_offline_queue_survives_a_server_restart(stelar_server_factory, browser):
    first = await stelar_server_factory(port=0, plugins=[TestPage()])
    port = first.get_port("ws")
    page = await open_page(browser, first)
    await page.evaluate(
        """async () => {
            window.hooked = [];
            window.client = new stelar.StelarClient(url, {
                reconnectionDelay: 50, maxReconnectionDelay: 200, reconnectionAttempts: null,
                hooks: {
                    onMessageQueued: (event, size) => hooked.push(["queued", event, size]),
                    onQueueDrained: (count) => hooked.push(["drained", count]),
                    onBeforeEmit: (event) => event !== "secret",
                },
            });
            window.reconnected = new Promise(
                (resolve) => client.on("connect", () => { if (client.metrics.reconnects) resolve(); })
            );
            await client.connect();
            await client.joinRoom("kept");
        }"""
    )
    await first.stop()
    await eventually(lambda: page.evaluate("client.state !== 'connected'"), what="the browser saw the stop")
    queued = await page.evaluate(
        "for (let n = 0; n < 5; n++) client.emit('note', n); [client.emit('secret', 1), client.queueSize]"
    )
    assert queued == [False, 5]  # onBeforeEmit cancelled the secret one
    second = StelarServer(port=port, plugins=[TestPage()])
    received = []
    second.on("note", lambda ctx: received.append(ctx.data))
    async with second:
        await page.evaluate("reconnected")
        await eventually(lambda: len(received) >= 5, what="the queue drained")
        await page.evaluate("client.emit('note', 'after')")
        await eventually(lambda: received[-1:] == ["after"], what="the marker after the queue")
        assert received == [0, 1, 2, 3, 4, "after"]
        # The room was joined again on the new server, and the hooks saw the queue.
        client_id = await page.evaluate("client.id")
        await eventually(lambda: second.get_room_members("kept") == [client_id], what="rejoined")
        hooked = await page.evaluate("hooked")
        assert hooked == [["queued", "note", n] for n in range(1, 6)] + [["drained", 5]]
        await page.evaluate("client.disconnect()")


async def test_reconnect_backoff_with_full_jitter_and_giving_up(stelar_server_factory, browser):
    server = await stelar_server_factory(port=0, plugins=[TestPage()])
    page = await open_page(browser, server)
    await page.evaluate(
        """async () => {
            window.delays = []; window.attempts = [];
            window.client = new stelar.StelarClient(url, {
                reconnectionDelay: 40, maxReconnectionDelay: 100, reconnectionAttempts: 4,
                random: () => 0.5,
                hooks: { onReconnectDelay: (attempt, delay) => { delays.push(delay); } },
            });
            client.on("reconnecting", (attempt) => attempts.push(attempt));
            window.failed = new Promise((resolve) => client.on("reconnect_failed", resolve));
            await client.connect();
        }"""
    )
    await server.stop()
    await page.evaluate("failed")
    # Half of min(100, 40 * 2^(attempt-1)) with random() = 0.5.
    assert await page.evaluate("delays") == [20, 40, 50, 50]
    assert await page.evaluate("attempts") == [1, 2, 3, 4]
    assert await page.evaluate("client.state") == "disconnected"


async def test_the_browser_answers_the_servers_heartbeats(stelar_server_factory, browser):
    # The server pings every 0.1 s and drops a client silent for 0.4 s: the browser stays.
    server = await stelar_server_factory(
        port=0, plugins=[TestPage()], heartbeat_interval=0.1, heartbeat_timeout=0.4
    )
    page = await open_page(browser, server)
    await page.evaluate(
        """async () => {
            window.client = new stelar.StelarClient(url, { reconnection: false });
            await client.connect();
        }"""
    )
    pongs_before = server.get_stats().total_messages_received
    await eventually(
        lambda: server.get_stats().total_messages_received >= pongs_before + 10, what="ten pongs"
    )
    assert await page.evaluate("client.state") == "connected" and len(server.get_clients()) == 1


async def test_a_custom_reconnect_delay(stelar_server_factory, browser):
    server = await stelar_server_factory(port=0, plugins=[TestPage()])
    page = await open_page(browser, server)
    await page.evaluate(
        """async () => {
            window.asked = [];
            window.client = new stelar.StelarClient(url, {
                reconnectionAttempts: 2, reconnectionDelay: 10, maxReconnectionDelay: 99,
                customReconnectDelay: (attempt, base, max) => { asked.push([attempt, base, max]); return 5; },
            });
            window.failed = new Promise((resolve) => client.on("reconnect_failed", resolve));
            await client.connect();
        }"""
    )
    await server.stop()
    await page.evaluate("failed")
    assert await page.evaluate("asked") == [[1, 10, 99], [2, 10, 99]]


async def test_a_silent_server_is_detected_by_the_heartbeat_watchdog(stelar_server_factory, browser):
    # The server pings rarely; the client expects to hear from it every 300 ms.
    server = await stelar_server_factory(port=0, plugins=[TestPage()], heartbeat_interval=60)
    page = await open_page(browser, server)
    detected = await page.evaluate(
        """async () => {
            const client = new stelar.StelarClient(url, { heartbeatTimeout: 300, reconnection: false });
            const lost = new Promise((resolve) => client.on("disconnect", resolve));
            const errors = [];
            client.on("error", (error, context) => errors.push([context, error.message]));
            await client.connect();
            const started = Date.now();
            const info = await lost;
            return { info, errors, elapsed: Date.now() - started };
        }"""
    )
    assert detected["info"] == {"code": 1006, "reason": "heartbeat timeout"}
    assert detected["errors"][0][0] == "heartbeat" and "server silent" in detected["errors"][0][1]
    assert 300 <= detected["elapsed"] < 2000


async def test_the_demo_page_with_a_python_client_in_the_same_room(browser, tmp_path):
    from stelar_core.plugin_api import build_relay_server

    server = build_relay_server(port=0, tcp_port=0, demo=True)
    async with server:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{server.get_port('ws')}/")
        await page.wait_for_selector("#status[data-state=connected]")
        await page.fill("#name", "ann")
        await page.click("#join button")
        await page.wait_for_selector("text=you joined lobby")
        python = StelarClient(server.addresses["tcp"][0])
        heard: asyncio.Queue = asyncio.Queue()
        python.on("chat", heard.put_nowait)
        async with python:
            await python.join_room("lobby")
            python.emit("chat", {"from": "bot", "text": "hello from TCP"})
            await page.wait_for_selector("text=bot: hello from TCP")
            await page.fill("#text", "hello from the browser")
            await page.click("#send")
            assert await asyncio.wait_for(heard.get(), 5) == {"from": "ann", "text": "hello from the browser"}
            # Who is online: ann by the name she gave, the bot by its ID.
            await page.wait_for_function("document.querySelectorAll('#members li').length === 2")
            await page.wait_for_selector("#members li:text('ann (you)')")
            await page.wait_for_function(
                "document.querySelector('#connections').textContent.includes('tcp: 1')"
                " && document.querySelector('#connections').textContent.includes('ws: 1')"
            )
            await page.screenshot(path=str(tmp_path / "demo.png"))
        await page.close()


async def _connected_id(page, server):
    client_id = await page.evaluate("client.state === 'connected' && client.id")
    return client_id if client_id and server.hub.session(client_id) is not None else None


def _abort(server, client_id):
    """Drop the browser's connection the way a network does: no close frame, nothing flushed."""
    server.hub.session(client_id).connection._stream().abort()


async def test_the_browser_recovers_a_room_and_resumes_its_session_across_drops(
    stelar_server_factory, browser
):
    server = await stelar_server_factory(port=0, plugins=[TestPage()], rooms={"feed": {"history_size": 100}})
    runs = []

    @server.on_ack("work")
    def work(ctx):
        runs.append(ctx.data)
        _abort(server, ctx.id)  # the handler ran; its answer is lost with the connection
        return ctx.data + 1

    page = await open_page(browser, server)
    await page.evaluate(
        """async () => {
            window.got = []; window.outcomes = [];
            window.client = new stelar.StelarClient(url, {
                reconnectionDelay: 10, maxReconnectionDelay: 50, reconnectionAttempts: null,
            });
            client.on("n", (n) => got.push(n));
            client.on("recovered", (info) => outcomes.push(["recovered", info.replayed]));
            client.on("not_recovered", (info) => outcomes.push(["not_recovered", info.reason]));
            await client.connect();
            window.joined = await client.joinRoom("feed");
        }"""
    )
    joined = await page.evaluate("joined")
    assert joined["position"]["offset"] == 0 and joined["recovered"] is None
    first_id = await page.evaluate("client.id")
    for round_ in range(3):
        for n in range(round_ * 20, round_ * 20 + 10):
            server.to("feed", "n", n)
        client_id = await eventually(lambda: _connected_id(page, server), what="up")
        _abort(server, client_id)
        for n in range(round_ * 20 + 10, round_ * 20 + 20):
            server.to("feed", "n", n)  # while the browser is away: kept in the room's history
    await eventually(lambda: page.evaluate("got.length >= 60"), what="all 60")
    assert await page.evaluate("got") == list(range(60))
    outcomes = await page.evaluate("outcomes")
    assert outcomes and all(kind == "recovered" for kind, _ in outcomes)
    # A request whose answer was lost with the connection: run once, answered after the resume.
    assert await page.evaluate("client.request('work', 41, {timeout: 10000})") == 42
    assert runs == [41]
    assert await page.evaluate("client.resumed") is True and await page.evaluate("client.id") == first_id
    await page.evaluate("client.disconnect()")


async def test_the_browser_keeps_a_presence_room_member_map(stelar_server_factory, browser):
    server = await stelar_server_factory(
        port=0,
        plugins=[TestPage()],
        rooms={"doc": {"presence": True}},
        presence_interval=0.05,
        presence_grace=0.05,
    )

    @server.use
    def user(ctx, next):
        ctx.presence_key = ctx.auth.get("user", ctx.id)
        next()

    page = await open_page(browser, server)
    await page.evaluate(
        """async () => {
            window.changes = [];
            window.client = new stelar.StelarClient(url, { auth: { user: "browser" } });
            client.on("presence", (change) => changes.push(change));
            await client.connect();
            await client.joinRoom("doc");
            client.updatePresence("doc", { cursor: 3 });
        }"""
    )
    python = StelarClient(server.addresses["tcp"][0], auth={"user": "python"})
    async with python:
        await python.join_room("doc")
        await eventually(
            lambda: python.presence("doc") == {"browser": {"cursor": 3}, "python": None}, what="py"
        )
        seen = await eventually(
            lambda: _members_seen(page, {"browser": {"cursor": 3}, "python": None}), what="the browser's map"
        )
        assert seen
    await eventually(lambda: _members_seen(page, {"browser": {"cursor": 3}}), what="python left")
    assert await page.evaluate("client.presenceCount('doc')") == 1
    await page.evaluate("client.disconnect()")
    assert page.errors == []


async def _members_seen(page, expected):
    return await page.evaluate("client.presence('doc')") == expected
