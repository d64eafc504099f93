"""Presence across nodes on a real redis-server: every node tells its members every node's
members; a user on two nodes is one member; a node that dies takes its members with it; while
Redis is away each node goes on with its own, and all converge when it is back."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from cluster_nodes import NodeProcess

from stelar_core import StelarClient, StelarServer
from stelar_core.testing import eventually

pytestmark = pytest.mark.one_loop

PRESENCE = {"rooms": {"doc": {"presence": True}}, "presence_interval": 0.05, "presence_grace": 0.2}


@pytest.fixture
async def nodes(redis_server):
    prefix = f"p{uuid.uuid4().hex[:8]}"
    servers = []
    for _ in range(2):
        server = StelarServer(
            transports=["tcp"],
            tcp_port=0,
            host="127.0.0.1",
            broker="redis",
            redis={"url": redis_server.url, "prefix": prefix, "heartbeat_interval": 0.2, "node_timeout": 1.0},
            **PRESENCE,
        )

        @server.use
        def user(ctx, next):
            ctx.presence_key = ctx.auth.get("user", ctx.id)
            next()

        await server.start()
        servers.append(server)
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
