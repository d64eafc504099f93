"""stelar over TCP doing the raw relay's work: echo ACKs, relay "fan" events to the room.

python bench/servers/stelar_tcp_relay.py  # prints "PORT <n>", serves until SIGTERM
"""

import asyncio
import signal

from stelar_core import StelarServer


async def main():
    server = StelarServer(
        port=None,
        tcp_port=0,
        rate_limit=None,
        max_connections=20_000,
        max_connections_per_ip=20_000,
        max_rooms_per_client=10,
        max_queued_messages=10_000,
        heartbeat_interval=300,
        heartbeat_timeout=600,
    )
    server.on_ack("echo", lambda ctx: ctx.data)
    server.on("fan", lambda ctx: ctx.to("room", "fan", ctx.data))
    await server.start()
    print("PORT", server.get_port("tcp"), flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
