"""Churn and floods: bounded in count and time; afterwards every table is back to its start."""

import asyncio

import pytest

from stelar_core import ErrorCode
from stelar_core.testing import connect_client

CYCLES_PER_TRANSPORT = 1000
CONCURRENCY = 50


def table_sizes(server):
    hub = server.hub
    return {
        "sessions": len(hub.directory.all),
        "open": len(hub.directory.open),
        "by_transport": sum(hub.directory.by_transport.values()),
        "rooms": len(server.get_rooms()),
        "ip_tracker": hub.ip_tracker.size(),
        "rate_limiter": hub.limits.size(),
        "client_limits": len(hub.limits.client_limits),
        "pending_acks": server.get_stats().pending_acks,
        "hub_tasks": len(hub.tasks),
        "admitted": hub.admissions.admitted,
        "connections": sum(len(t.connections) for t in server.transports if hasattr(t, "connections")),
    }


async def test_thousands_of_cycles_leave_the_tables_as_they_were(stelar_server_factory):
    server = await stelar_server_factory(
        port=0, tcp_port=0, max_connections_per_ip=200, rate_limit={"max_points": 100, "window": 1}
    )
    server.on("chat", lambda ctx: ctx.to("room-" + str(ctx.data % 7), "chat", ctx.data, exclude=ctx.id))
    server.on_ack("echo", lambda ctx: ctx.data)
    baseline = table_sizes(server)
    gone = asyncio.Event()
    closed = 0
    total = 2 * CYCLES_PER_TRANSPORT

    @server.on_disconnect
    def count(ctx):
        nonlocal closed
        closed += 1
        if closed == total:
            gone.set()

    async def cycle(transport, n):
        client = await connect_client(server, transport)
        await client.join(f"room-{n % 7}")
        client.emit("chat", n)
        assert await client.request("echo", n) == n
        client.close()
        await client.wait_closed()

    async def run(transport):
        for start in range(0, CYCLES_PER_TRANSPORT, CONCURRENCY):
            await asyncio.gather(*(cycle(transport, n) for n in range(start, start + CONCURRENCY)))

    await asyncio.wait_for(asyncio.gather(run("ws"), run("tcp")), 120)
    await asyncio.wait_for(gone.wait(), 10)
    stats = server.get_stats()
    assert stats.total_connections == total
    after = table_sizes(server)
    after["connections"] = sum(len(t.connections) for t in server.transports if hasattr(t, "connections"))
    assert after == baseline


@pytest.mark.parametrize("keep", [False, True])
async def test_a_flooder_is_handled_per_the_hook_and_the_others_are_served(stelar_server_factory, keep):
    kept = []
    server = await stelar_server_factory(
        port=None,
        tcp_port=0,
        rate_limit={"max_points": 50, "window": 60},
        hooks={
            "on_rate_limit_exceeded": lambda client_id: kept.append(client_id) or (False if keep else None)
        },
    )
    server.on_ack("echo", lambda ctx: ctx.data)
    server.on("spam", lambda ctx: None)
    flooder = await connect_client(server)
    others = [await connect_client(server) for _ in range(5)]
    for n in range(2000):
        flooder.emit("spam", n)
    answers = await asyncio.gather(
        *(client.request("echo", i) for i, client in enumerate(others) for _ in range(10))
    )
    assert sorted(answers) == sorted(i for i in range(5) for _ in range(10))
    if keep:
        assert (await flooder.next_error())[0] == ErrorCode.RATE_LIMITED
        assert not flooder.closed.done()
        assert server.get_stats().rate_limited == 2000 - 50
    else:
        assert await flooder.wait_closed() == (1008, "rate limit exceeded")
        assert server.get_stats().rate_limited == 1
    assert kept and set(kept) == {flooder.id}
