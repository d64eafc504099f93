"""Nodes in this process on one NATS, each a StelarServer with broker "nats"."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from stelar_core.testing.processes import wait_for_line

NODE_APP = Path(__file__).with_name("nats_node_app.py")

# Fast failure detection for the fault tests (the defaults suit production).
FAST = {"heartbeat_interval": 0.2, "node_timeout": 1.0, "command_timeout": 0.5, "reconnect_delay": 0.05}


async def start_nodes(url: str, count: int, **options) -> list:
    """``count`` started nodes on ``url`` under a fresh prefix (``nats`` options add to it)."""
    from stelar_core import StelarServer

    nats = {"servers": [url], "prefix": f"t{uuid.uuid4().hex[:8]}", **FAST, **options.pop("nats", {})}
    defaults = {"transports": ["tcp"], "tcp_port": 0, "host": "127.0.0.1", "broker": "nats"}
    servers = []
    for _ in range(count):
        server = StelarServer(**{**defaults, **options}, nats=nats)
        await server.start()
        servers.append(server)
    return servers


class NodeProcess:
    """One stelar node on NATS in a process of its own (``nats_node_app.py``), to kill."""

    def __init__(self, url: str, prefix: str, rooms: dict | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(NODE_APP), url, prefix, json.dumps(rooms or {})],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=NODE_APP.parent,
        )
        ready = json.loads(wait_for_line(self.process, '"node_id"', "stelar node")[-1])
        self.node_id: str = ready["node_id"]
        self.tcp: str = ready["tcp"]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
