"""Presence across nodes on a real redis-server: every node tells its members every node's
members; a user on two nodes is one member; a node that dies takes its members with it; while
Redis is away each node goes on with its own, and all converge when it is back."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import uuid
from pathlib import Path

import pytest
from cluster_nodes import NodeProcess, start_in_process

from stelar_core import StelarClient
from stelar_core.testing import eventually

pytestmark = pytest.mark.one_loop

PRESENCE = {"rooms": {"doc": {"presence": True}}, "presence_interval": 0.05, "presence_grace": 0.2}


@pytest.fixture
async def nodes(redis_server):
    redis = {"heartbeat_interval": 0.2, "node_timeout": 1.0}
    servers = await start_in_process(redis_server.url, 2, users=True, redis=redis, **PRESENCE)
    yield servers
    for server in servers:
        await server.stop()


def client(server, user):
    return StelarClient(server.addresses["tcp"][0], reconnection=False, auth={"user": user})


async def test_members_on_both_nodes_see_each_other_and_a_user_on_two_nodes_is_one(nodes):
    one, two = nodes
    ann, bob, ann_too = client(one, "ann"), client(two, "bob"), client(two, "ann")
    async with ann, bob, ann_too:
        for member in (ann, bob, ann_too):
            await member.join_room("doc")
        ann.update_presence("doc", {"cursor": 1})
        everyone = {"ann": {"cursor": 1}, "bob": None}
        for member in (ann, bob, ann_too):
            await eventually(lambda member=member: member.presence("doc") == everyone, what="every map")
        assert one.presence("doc") == two.presence("doc") == everyone
        assert await one.cluster.presence("doc") == everyone  # read from Redis
        seen = []
        bob.on("presence", seen.append)
        await ann_too.leave_room("doc")  # ann is still on node one: no leave
        bob.update_presence("doc", {"typing": True})
        await eventually(lambda: seen, what="bob's own update")
        assert all(not change["leaves"] for change in seen) and bob.presence("doc")["ann"] == {"cursor": 1}


async def test_while_redis_is_away_each_node_goes_on_and_all_converge_after(nodes, redis_server):
    one, two = nodes
    ann, bob = client(one, "ann"), client(two, "bob")
    async with ann, bob:
        await ann.join_room("doc")
        await bob.join_room("doc")
        await eventually(lambda: ann.presence("doc").keys() == {"ann", "bob"}, what="both")
        redis_server.kill()
        await eventually(lambda: one.get_stats().degraded, what="degraded")
        cy = client(one, "cy")
        async with cy:
            await cy.join_room("doc")
            await eventually(lambda: "cy" in ann.presence("doc"), what="local presence goes on")
            redis_server.start()
            await eventually(
                lambda: not one.get_stats().degraded and not two.get_stats().degraded, what="back"
            )
            await eventually(lambda: bob.presence("doc").keys() == {"ann", "bob", "cy"}, what="converged")


async def test_a_killed_node_takes_its_members_with_it(redis_server):
    prefix = f"k{uuid.uuid4().hex[:8]}"
    options = {**PRESENCE, "redis": {"heartbeat_interval": 0.2, "node_timeout": 1.0}}
    doomed, survivor = [NodeProcess(redis_server.url, prefix, **options).start() for _ in range(2)]
    try:
        ann = StelarClient(doomed.addresses["tcp"], reconnection=False)
        bob = StelarClient(survivor.addresses["tcp"], reconnection=False)
        async with bob:
            await ann.connect()
            await ann.join_room("doc")
            await bob.join_room("doc")
            await eventually(lambda: len(bob.presence("doc")) == 2, what="both")
            doomed.kill()
            loop = asyncio.get_running_loop()
            killed_at = loop.time()
            await eventually(lambda: len(bob.presence("doc")) == 1, what="ann gone", timeout=10)
            # Within the node timeout, plus a heartbeat, plus an interval (and this test's polling).
            assert loop.time() - killed_at < 1.0 + 0.2 + 0.05 + 1.0
            await ann.disconnect()
    finally:
        doomed.stop()
        survivor.stop()
        gc.collect()  # the dropped link's transport is finalized in this test's loop


async def test_two_hundred_clients_of_both_libraries_on_two_nodes_agree(redis_server):
    """100 Python clients (TCP and WebSocket) and 100 stelar.js clients (Node.js), on two nodes:
    every member map ends equal to the true set, and each client got a snapshot and at most one
    diff per interval, not one frame per join."""
    interval = 0.2
    servers = await start_in_process(
        redis_server.url,
        2,
        users=True,
        transports=["ws", "tcp"],
        port=0,
        rate_limit=None,
        max_connections_per_ip=1000,
        rooms={"doc": {"presence": True}},
        presence_interval=interval,
        presence_grace=0.2,
    )
    node = shutil.which("node")
    assert node is not None, "Node.js 20+ runs stelar.js (apt-get install nodejs)"
    script = Path(__file__).parents[2] / "stelar-ws" / "tests" / "js" / "presence_clients.mjs"
    started = asyncio.get_running_loop().time()
    js = await asyncio.create_subprocess_exec(
        node,
        "--experimental-websocket",
        "--no-warnings",
        str(script),
        "100",
        *(server.addresses["ws"][0] for server in servers),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**24,  # the report is one long line
    )
    python = [
        StelarClient(
            servers[n % 2].addresses["tcp" if n % 4 < 2 else "ws"][0],
            reconnection=False,
            auth={"user": f"py{n}"},
        )
        for n in range(100)
    ]
    events = [0] * len(python)
    for index, member in enumerate(python):
        member.on("presence", lambda change, index=index: events.__setitem__(index, events[index] + 1))
    try:
        await asyncio.gather(*(member.connect() for member in python))
        await asyncio.gather(*(member.join_room("doc") for member in python))
        assert (await asyncio.wait_for(js.stdout.readline(), 60)).strip() == b"joined"
        truth = {f"py{n}": None for n in range(100)} | {f"js{n}": None for n in range(100)}
        await eventually(
            lambda: all(member.presence("doc") == truth for member in python),
            what="every Python map",
            timeout=20,
        )
        js.stdin.write(b"report\n")
        await js.stdin.drain()
        report = json.loads(await asyncio.wait_for(js.stdout.readline(), 30))
        elapsed = asyncio.get_running_loop().time() - started
        assert all(entry["members"] == truth for entry in report)
        bound = elapsed / interval + 3  # a snapshot, a diff per interval at most, and slack
        assert max(events) <= bound and max(entry["events"] for entry in report) <= bound
        assert servers[0].presence("doc") == servers[1].presence("doc") == truth
    finally:
        for member in python:
            await member.disconnect()
        if js.returncode is None:
            js.kill()
        await js.wait()
        for server in servers:
            await server.stop()
