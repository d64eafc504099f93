"""stelar over WebSocket doing the bare websockets relay's work: echo ACKs, relay "fan" events
to the room. ``--frame-per-recipient`` turns off the shared broadcast framing.

    python bench/servers/stelar_ws_relay.py   # prints "PORT <n>", serves until SIGTERM
"""

import asyncio
import signal
import sys

from stelar_core import StelarServer
from stelar_ws import WsTransport


async def main():
    WsTransport.share_encoding = "--frame-per-recipient" not in sys.argv
    server = StelarServer(
        port=0,
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
    print("PORT", server.get_port("ws"), flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
