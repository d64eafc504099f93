"""stelar nodes in processes of their own (``cluster_app.py``), joined by a test's Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from stelar_core.testing.processes import wait_for_line

NODE_APP = Path(__file__).with_name("cluster_app.py")

# Redis options short enough for the fault tests: a failure is seen within ~0.3 s, a dead node
# forgotten after 1 s, a reconnection within ~0.2 s.
FAST = {
    "heartbeat_interval": 0.1,
    "node_timeout": 1.0,
    "command_timeout": 0.3,
    "connect_timeout": 0.3,
    "reconnect_delay": 0.02,
    "reconnect_max_delay": 0.2,
}


class NodeProcess:
    """One stelar server in a process of its own (``cluster_app.py``), joined to Redis."""

    def __init__(self, redis_url: str, prefix: str, **options) -> None:
        self.args = [
            sys.executable,
            str(NODE_APP),
            json.dumps({"url": redis_url, "prefix": prefix, **options}),
        ]
        self.process: subprocess.Popen[str] | None = None
        self.addresses: dict[str, str] = {}
        self.node_id = ""

    def start(self) -> NodeProcess:
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines = wait_for_line(self.process, '"node_id"', "stelar node")
        ready = json.loads(lines[-1])
        self.node_id = ready.pop("node_id")
        self.addresses = ready
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


async def start_in_process(redis_url: str, count: int, *, users: bool = False, **options) -> list:
    """``count`` nodes in this process on ``redis_url`` under a fresh prefix, listening on TCP
    (``options`` add to or replace the defaults; ``redis`` options add to url and prefix). With
    ``users`` a connection's presence key is the ``user`` its auth names."""
    from stelar_core import StelarServer

    redis = {"url": redis_url, "prefix": f"n{uuid.uuid4().hex[:8]}", **options.pop("redis", {})}
    defaults = {"transports": ["tcp"], "tcp_port": 0, "host": "127.0.0.1", "broker": "redis"}
    servers = []
    for _ in range(count):
        server = StelarServer(**{**defaults, **options}, redis=redis)
        if users:

            @server.use
            def user(ctx, next):
                ctx.presence_key = ctx.auth.get("user", ctx.id)
                next()

        await server.start()
        servers.append(server)
    return servers
