"""python-socketio (on aiohttp) doing the reference work: answers the connect, joins "room" on a
"join" event (ACK true), echoes "echo" requests through their ACK, emits "fan" events to the room.

    python bench/servers/socketio_relay.py [--redis URL]   # prints "PORT <n>", serves until SIGTERM

``--asgi`` serves it as python-socketio's ASGI app under uvicorn instead of aiohttp.
``--redis URL`` joins the servers on that Redis with python-socketio's ``AsyncRedisManager``
(bench/cluster.py); the ``ask`` event then calls the client whose sid it carries, on any server.
"""

import asyncio
import logging
import signal
import sys

import socketio
from aiohttp import web

sio = socketio.AsyncServer(
    async_mode="asgi" if "--asgi" in sys.argv else "aiohttp",
    transports=["websocket"],
    ping_interval=300,  # no Engine.IO pings while measuring
    ping_timeout=600,
    max_http_buffer_size=1 << 24,
    logger=False,
    engineio_logger=False,
    client_manager=socketio.AsyncRedisManager(sys.argv[sys.argv.index("--redis") + 1])
    if "--redis" in sys.argv
    else None,
)


@sio.event
async def join(sid, room):
    await sio.enter_room(sid, room)
    return True


@sio.event
async def echo(sid, data):
    return data


@sio.event
async def ask(sid, target):
    return await sio.call("echo", "hello there, how is everyone doing today?", to=target, timeout=10)


@sio.event
async def fan(sid, data):
    await sio.emit("fan", data, room="room")


async def main_asgi():
    from uvicorn_ready import serve

    await serve(socketio.ASGIApp(sio))


async def main():
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print("PORT", runner.addresses[0][1], flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main_asgi() if "--asgi" in sys.argv else main())
