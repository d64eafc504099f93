"""stelar doing the reference servers' work: echo ACKs, relay "fan" events to the room.

    python bench/servers/stelar_relay.py tcp|ws [--frame-per-recipient]

Prints "PORT <n>" once listening, serves until SIGTERM. ``--frame-per-recipient`` (ws) turns off
the shared broadcast framing.
"""

import asyncio
import signal
import sys

from stelar_core import StelarServer
from stelar_ws import WsTransport


async def main(transport: str):
    WsTransport.share_encoding = "--frame-per-recipient" not in sys.argv
    listeners = {"tcp": {"port": None, "tcp_port": 0}, "ws": {"port": 0}}[transport]
    server = StelarServer(
        **listeners,
        rate_limit=None,
        max_connections=20_000,
        max_connections_per_ip=20_000,
        max_queued_messages=10_000,
        heartbeat_interval=300,
        heartbeat_timeout=600,
    )
    server.on_ack("echo", lambda ctx: ctx.data)
    server.on("fan", lambda ctx: ctx.to("room", "fan", ctx.data))
    await server.start()
    print("PORT", server.get_port(transport), flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
