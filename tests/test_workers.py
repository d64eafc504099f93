"""``stelar serve --workers N``: N real processes sharing the ports, joined by a real Redis,
supervised (a killed worker comes back), stopped gracefully by SIGTERM; refused without a broker
shared across processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest

from stelar_core.cli import main
from stelar_core.testing import eventually
from stelar_core.testing.processes import free_port

pytestmark = pytest.mark.one_loop


def test_workers_without_a_shared_broker_are_refused(capsys):
    assert main(["serve", "--workers", "2", "--port", "0", "--tcp-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers needs a broker shared across processes" in err and "--broker redis" in err


def test_workers_must_be_at_least_one(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err


def test_a_built_server_must_share_its_ports_to_run_in_workers(tmp_path, capsys, monkeypatch):
    (tmp_path / "builtapp.py").write_text(
        "from stelar_core import StelarServer\nserver = StelarServer(port=0, broker='redis')\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "builtapp:server", "--workers", "2"]) == 2
    assert "give it reuse_port=True" in capsys.readouterr().err


async def children(pid: int) -> set[int]:
    ps = await asyncio.create_subprocess_exec(
        "ps", "-o", "pid=", "--ppid", str(pid), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await ps.communicate()
    return {int(line) for line in out.split()}


async def test_workers_share_the_ports_act_as_one_and_come_back(redis_server, connect, tmp_path):
    prefix = f"w{uuid.uuid4().hex[:8]}"
    ws_port, tcp_port = free_port(), free_port()
    log = (tmp_path / "workers.log").open("w")
    supervisor = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "stelar_core.cli", "serve", "--workers", "2"],
        *["--port", str(ws_port), "--tcp-port", str(tcp_port), "--broker", "redis"],
        *["--redis-url", redis_server.url, "--redis-prefix", prefix],
        *["--redis-heartbeat-interval", "0.2", "--redis-node-timeout", "1.0"],
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    try:

        async def live_nodes():
            return await redis_server.command("ZCARD", f"{prefix}:nodes")

        await eventually(lambda: _equals(live_nodes(), 2), timeout=30, what="two workers registered")
        workers = await children(supervisor.pid)
        assert len(workers) == 2

        async def clients_per_node():
            nodes = await redis_server.command("ZRANGE", f"{prefix}:nodes", 0, -1)
            return [await redis_server.command("HLEN", f"{prefix}:node:{n.decode()}:info") for n in nodes]

        # Connect until the kernel has given both workers a client (it hashes each connection).
        clients = []
        for _ in range(40):
            client = await connect(f"ws://127.0.0.1:{ws_port}/")
            await client.client.join_room("lobby")
            clients.append(client)
            counts = await eventually(clients_per_node, what="membership written")
            if len(clients) >= 2 and all(counts) and sum(counts) == len(clients):
                break
        assert all(await clients_per_node()), "all clients landed on one worker"

        # The relay app sends a member's message to the other members, on both workers.
        clients[0].client.emit("chat", "hello")
        for other in clients[1:]:
            assert (await other.wait_for(1))[-1] == ("chat", "hello")

        # A worker killed with SIGKILL is restarted by the supervisor, and joins the cluster.
        before = set(await redis_server.command("ZRANGE", f"{prefix}:nodes", 0, -1))
        victim = sorted(workers)[0]
        environ = await asyncio.to_thread(Path(f"/proc/{victim}/environ").read_bytes)
        victim_index = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)[
            b"STELAR_WORKER"
        ]
        os.kill(victim, signal.SIGKILL)

        async def restarted():
            return len(await children(supervisor.pid) - {victim}) == 2

        await eventually(restarted, timeout=15, what="the worker restarted")

        async def a_new_node():
            return set(await redis_server.command("ZRANGE", f"{prefix}:nodes", 0, -1)) - before

        await eventually(a_new_node, timeout=15, what="the new worker registered")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(supervisor.communicate(), 30)
        code = supervisor.returncode
        log.close()
    assert code == 0
    assert await children(supervisor.pid) == set()
    # One summary from the supervisor; each listener once, by the first worker (again when it
    # was the one killed and restarted), not once per worker and again in the log.
    lines = out.decode().splitlines()
    assert sum("2 workers share the ports" in line for line in lines) == 1, lines
    listening = [line for line in lines if "listening on" in line]
    starts_of_worker_0 = 2 if victim_index == b"0" else 1
    assert len(listening) == 2 * starts_of_worker_0, lines
    assert "listening on" not in (tmp_path / "workers.log").read_text()


async def _equals(value, wanted):
    return (await value) == wanted
