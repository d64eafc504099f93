"""An application that runs the server itself (asyncio-style ``serve_forever``/``wait_closed``),
and opt-in concurrency of one client's requests."""

import asyncio
import signal

import pytest

from stelar_core import StelarServer
from stelar_core.protocol import FrameType
from stelar_core.testing import connect_client


async def test_serve_forever_returns_when_stop_ends_the_server():
    server = StelarServer(transports=["memory"])
    serving = asyncio.ensure_future(server.serve_forever())
    await asyncio.wait_for(server.started.wait(), 5)
    assert server.running and not serving.done()
    await server.stop()
    await asyncio.wait_for(serving, 5)
    await asyncio.wait_for(server.wait_closed(), 5)  # stopped: returns at once


async def test_serve_forever_returns_on_sigterm_with_graceful_shutdown():
    original = signal.getsignal(signal.SIGTERM)
    server = StelarServer(transports=["memory"], graceful_shutdown=True)
    serving = asyncio.ensure_future(server.serve_forever())
    await asyncio.wait_for(server.started.wait(), 5)
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(serving, 5)  # hung forever before: nothing returned after the stop
    assert server.state == "stopped"
    assert signal.getsignal(signal.SIGTERM) is original


async def test_wait_closed_of_a_server_never_started_returns_at_once():
    await asyncio.wait_for(StelarServer(transports=["memory"]).wait_closed(), 1)


async def ping(client, payload):
    """A round trip that is not held up behind a client's running requests."""
    client.send_frame(FrameType.PING, payload=payload)
    await client.wait_until(lambda: payload in client.pongs)


async def slow_and_fast(server, *, concurrent, order):
    """Register a "slow" request that waits for ``release`` and an instant "fast" one."""
    release = asyncio.Event()
    started = []

    async def slow(ctx):
        started.append(ctx.data)
        await release.wait()
        order.append(f"slow-{ctx.data}")
        return "slow"

    def fast(ctx):
        order.append("fast")
        return "fast"

    server.on_ack("slow", slow, concurrent=concurrent)
    server.on_ack("fast", fast)
    return release, started


async def test_by_default_one_clients_requests_are_answered_in_order(stelar_server):
    order = []
    release, _ = await slow_and_fast(stelar_server, concurrent=False, order=order)
    client = await connect_client(stelar_server)
    slow = asyncio.ensure_future(client.request("slow", 1))
    fast = asyncio.ensure_future(client.request("fast"))
    await ping(client, b"1")  # the server has read both requests (pings are answered at once)
    assert order == [] and not fast.done()
    release.set()
    assert (await slow, await fast) == ("slow", "fast")
    assert order == ["slow-1", "fast"]


async def test_a_concurrent_handler_lets_the_clients_next_requests_through(stelar_server):
    order = []
    release, _ = await slow_and_fast(stelar_server, concurrent=True, order=order)
    client = await connect_client(stelar_server)
    slow = asyncio.ensure_future(client.request("slow", 1))
    assert await client.request("fast") == "fast"  # answered while the slow one still runs
    assert order == ["fast"] and not slow.done()
    release.set()
    assert await slow == "slow"
    assert order == ["fast", "slow-1"]


async def test_concurrent_requests_are_bounded_per_client(stelar_server_factory):
    server = await stelar_server_factory(max_concurrent_requests=2)
    order = []
    release, started = await slow_and_fast(server, concurrent=True, order=order)
    client = await connect_client(server)
    other = await connect_client(server)
    slows = [asyncio.ensure_future(client.request("slow", n)) for n in (1, 2, 3)]
    fast = asyncio.ensure_future(client.request("fast"))
    # Another client is not held up by this one's full slots.
    assert await other.request("fast") == "fast"
    await ping(client, b"1")
    assert started == [1, 2] and not fast.done()  # the third waits for a place, the fast one behind it
    release.set()
    assert [await s for s in slows] == ["slow"] * 3 and await fast == "fast"
    assert started == [1, 2, 3]


@pytest.mark.parametrize("bad", [0, -1, "2"])
def test_max_concurrent_requests_is_validated(bad):
    from stelar_core import ConfigError

    with pytest.raises(ConfigError, match="option 'max_concurrent_requests'"):
        StelarServer(transports=["memory"], max_concurrent_requests=bad)
