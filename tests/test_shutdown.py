"""Graceful shutdown end to end: nothing left behind, clients carried over to the next server."""

import asyncio
import os
import signal

import pytest

from stelar_core import StelarClient, StelarServer


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_timers(loop) -> int:
    return sum(1 for handle in loop._scheduled if not handle.cancelled())


# Live timers are counted in asyncio's own timer heap; uvloop keeps its timers out of Python's view.
@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_two_servers_and_repeated_cycles_leave_nothing_behind():
    loop = asyncio.get_running_loop()

    def previous_handler(signum, frame):
        return None

    original = signal.signal(signal.SIGTERM, previous_handler)
    try:
        baseline = (open_fds(), len(asyncio.all_tasks()), live_timers(loop))
        for _ in range(4):
            servers = [
                StelarServer(host="127.0.0.1", port=0, tcp_port=0, health_port=0, graceful_shutdown=True)
                for _ in range(2)
            ]
            clients = []
            for server in servers:
                server.on_ack("echo", lambda ctx: ctx.data)
                await server.start()
                for url in (server.addresses["ws"][0], server.addresses["tcp"][0]):
                    client = StelarClient(url, reconnection=False)
                    await client.connect()
                    await client.join_room("room")
                    assert await client.request("echo", 1) == 1
                    clients.append(client)
            assert signal.getsignal(signal.SIGTERM) is not previous_handler  # ours while running
            for server in servers:
                await server.stop()
            for client in clients:
                await client.disconnect()
            assert signal.getsignal(signal.SIGTERM) is previous_handler
            for server in servers:
                assert server.get_stats().active_connections == 0 and server.get_rooms() == []
                assert not server.hub.busy
        leftover = [h for h in loop._scheduled if not h.cancelled()]
        assert (open_fds(), len(asyncio.all_tasks()), len(leftover)) == baseline, leftover
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_a_client_connected_during_shutdown_moves_to_the_next_server_with_its_queue():
    first = StelarServer(host="127.0.0.1", port=None, tcp_port=0, shutdown_timeout=5)
    received = []
    started, release = asyncio.Event(), asyncio.Event()

    @first.on_ack("hold")
    async def hold(ctx):
        started.set()
        await release.wait()
        return "held"

    first.on("n", lambda ctx: received.append(("first", ctx.data)))
    await first.start()
    port = first.get_port("tcp")
    second = StelarServer(host="127.0.0.1", port=None, tcp_port=port)
    second.on("n", lambda ctx: received.append(("second", ctx.data)))
    second.on_ack("sync", lambda ctx: True)
    second_up = asyncio.Event()

    async def wait_for_second(delay):
        await second_up.wait()

    gone, back = asyncio.Event(), asyncio.Event()
    client = StelarClient(f"tcp://127.0.0.1:{port}", sleep=wait_for_second, reconnection_attempts=None)
    client.on("disconnect", lambda info: gone.set())
    client.on("connect", lambda: gone.is_set() and back.set())
    try:
        await client.connect()
        await client.join_room("team")
        held = asyncio.ensure_future(client.request("hold", timeout=10))
        await asyncio.wait_for(started.wait(), 5)
        stopping = asyncio.ensure_future(first.stop())
        client.emit("n", 1)  # during shutdown: the first server still takes it
        release.set()
        assert await held == "held"
        await asyncio.wait_for(gone.wait(), 5)
        for n in (2, 3):
            client.emit("n", n)  # queued
        await stopping
        await second.start()
        second_up.set()
        await asyncio.wait_for(back.wait(), 5)
        assert await client.request("sync") is True
        assert received == [("first", 1), ("second", 2), ("second", 3)]
        assert second.get_room_members("team") == [client.id]
    finally:
        await client.disconnect()
        await first.stop()
        await second.stop()
