"""The admin page in Chromium (Playwright) against two nodes on a real redis-server with 50
connected clients: what it counts, what it sends, whom it kicks, what a read-only login may do,
and what its live tail shows."""

from __future__ import annotations

import asyncio
import json

import pytest
from api_support import KEY, KEYS, READ_ONLY_KEY
from cluster_nodes import start_in_process
from playwright.async_api import expect

from stelar_core import StelarClient

pytestmark = pytest.mark.one_loop

CLIENTS_PER_NODE = 25


@pytest.fixture
async def cluster(redis_server):
    nodes = await start_in_process(
        redis_server.url,
        2,
        transports=["tcp", "ws"],
        port=0,
        api={"enabled": True, "admin": True, "keys": KEYS},
        redis={"prefix": "admin"},
    )
    clients = []
    for node in nodes:
        for _ in range(CLIENTS_PER_NODE):
            client = StelarClient(node.addresses["tcp"][0], reconnection=False)
            client.inbox = asyncio.Queue()
            client.on("announce", client.inbox.put_nowait)
            await client.connect()
            await client.join_room("lobby")
            client.node = node
            clients.append(client)
    yield nodes, clients
    for client in clients:
        await client.disconnect()
    for node in nodes:
        await node.stop()


async def logged_in(browser, node, key):
    page = await browser.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(f"http://127.0.0.1:{node.get_port('ws')}/admin")
    await page.fill("#key", key)
    await page.click("#login-button")
    await page.wait_for_selector("#app:not([hidden])")
    return page


async def test_counts_sends_kicks_and_tails(cluster, browser):
    nodes, clients = cluster
    page = await logged_in(browser, nodes[0], KEY)
    # Counts: both nodes and all 50 connections, read through the API from Redis.
    await expect(page.locator("#total-connections")).to_have_text("50", timeout=15000)
    assert await page.locator("#nodes tbody tr").count() == 2
    await page.click("#rooms li[data-room='lobby']")
    await expect(page.locator("#member-count")).to_have_text("50")

    # A message sent from the page reaches all 50, on both nodes.
    await page.fill("#send-room", "lobby")
    await page.fill("#send-event", "announce")
    await page.fill("#send-data", '{"n": 1}')
    await page.click("#send-button")
    assert [await asyncio.wait_for(client.inbox.get(), 5) for client in clients] == [{"n": 1}] * 50

    # A kick of a client on the other node closes it within a second.
    target = next(client for client in clients if client.node is nodes[1])
    closed = asyncio.get_running_loop().create_future()
    target.on("disconnect", lambda info: closed.done() or closed.set_result(info["code"]))
    await page.click(f"#members li[data-client='{target.id}']")
    await page.wait_for_selector("#client-info dd")
    assert await page.locator("#client-info").inner_text() != ""
    loop = asyncio.get_running_loop()
    clicked = loop.time()
    await page.click("#kick")
    assert await asyncio.wait_for(closed, 5) == 4000
    assert loop.time() - clicked < 1.0

    # The live tail shows matching events only (this node's).
    await page.fill("#tail-event", "ping")
    await page.click("#tail-toggle")
    await expect(page.locator("#tail-state")).to_contain_text("on node")
    talker = next(client for client in clients if client.node is nodes[0])
    for n in range(3):
        talker.emit("pong", n)
        talker.emit("ping", n)
    await expect(page.locator("#tail-lines li")).to_have_count(3)
    lines = await page.locator("#tail-lines li").all_inner_texts()
    assert len(lines) == 3 and all(" event ping " in f"{line} " and talker.id in line for line in lines)
    assert page.errors == []


async def test_a_read_only_login_sees_a_read_only_page(cluster, browser):
    nodes, clients = cluster
    page = await logged_in(browser, nodes[0], READ_ONLY_KEY)
    assert await page.locator("#read-only-badge").is_visible()
    await page.click("#rooms li[data-room='lobby']")
    await page.click(f"#members li[data-client='{clients[0].id}']")
    await page.wait_for_selector("#client-info dd")
    assert not await page.locator("#kick").is_visible()
    assert not await page.locator("#send-section").is_visible()
    # Even called by hand, a change is refused to this session.
    status = await page.evaluate(
        """async (client) => {
            const { token } = JSON.parse(sessionStorage.getItem("stelar-admin-session"));
            const response = await fetch("/api/disconnect", {
                method: "POST",
                headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
                body: JSON.stringify({ client }),
            });
            return response.status;
        }""",
        clients[0].id,
    )
    assert status == 403 and clients[0].connected
    assert page.errors == []


async def test_a_forged_session_is_sent_back_to_the_login(cluster, browser):
    nodes, _ = cluster
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{nodes[0].get_port('ws')}/admin")
    forged = {"token": "session.forged", "name": "ops", "read_only": False}
    await page.evaluate("(s) => sessionStorage.setItem('stelar-admin-session', s)", json.dumps(forged))
    await page.reload()
    await page.wait_for_selector("#login:not([hidden])")
    assert "log in again" in await page.locator("#login-error").inner_text()
