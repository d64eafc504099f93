"""The soak run's server: WebSocket + TCP + health, chat relayed to rooms, an echo request,
a rate limit the flooder exceeds. Prints its ports as JSON, serves until SIGTERM."""

import asyncio
import json
import signal

from stelar_core import StelarServer


async def main():
    server = StelarServer(
        port=0,
        tcp_port=0,
        rate_limit={"max_points": 200, "window": 1.0},
        max_connections_per_ip=1000,
        max_buffered_bytes=256 * 1024,
        slow_consumer_timeout=2.0,
        heartbeat_interval=5.0,
        heartbeat_timeout=15.0,
    )
    server.on(
        "chat",
        lambda ctx: ctx.to(ctx.data["room"], "chat", ctx.data, exclude=ctx.id) if ctx.data["room"] else None,
    )
    server.on("spam", lambda ctx: None)
    server.on_ack("echo", lambda ctx: ctx.data)
    # Why connections ended, by close code and reason: in the health body's counters.
    server.on_disconnect(
        lambda ctx: server.hub.count(
            f"closed {ctx.data['code']} {ctx.data['reason']} ({ctx.auth.get('role', '?')})"
        )
    )
    await server.start()
    print(json.dumps({"ws": server.get_port("ws"), "tcp": server.get_port("tcp")}), flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
