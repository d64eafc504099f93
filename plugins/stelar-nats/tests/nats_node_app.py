"""A stelar node on NATS in a process of its own, for the tests that kill one:

    python tests/nats_node_app.py NATS_URL PREFIX [ROOMS_JSON]

It prints one JSON line (its node ID and TCP address) once it listens, then serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from nats_nodes import FAST

from stelar_core import StelarServer


async def main(url: str, prefix: str, rooms: dict) -> None:
    server = StelarServer(
        transports=["tcp"],
        rooms=rooms,
        rate_limit=None,
        host="127.0.0.1",
        tcp_port=0,
        broker="nats",
        nats={"servers": [url], "prefix": prefix, **FAST},
    )
    await server.start()
    print(json.dumps({"node_id": server.cluster.node_id, "tcp": server.addresses["tcp"][0]}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}))
