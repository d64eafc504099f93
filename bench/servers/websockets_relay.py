"""The reference: a bare ``websockets`` server doing the same work as stelar_relay.py with
nothing else: answers connect and join, echoes ACK requests, relays an event to the room with
``websockets.broadcast``.

    python bench/servers/websockets_relay.py  # prints "PORT <n>", serves until SIGTERM
"""

import asyncio
import logging
import signal

from websockets.asyncio.server import broadcast, serve

WELCOME = b'\x06\x00\x00{"id":"raw","v":1}'
JOINED = b'{"ok":true}'
room = set()


async def handler(ws):
    try:
        async for frame in ws:
            kind = frame[0]
            if kind == 6:
                await ws.send(WELCOME)
            elif kind == 8:
                room.add(ws)
                await ws.send(frame + JOINED)
            elif kind == 4:
                event_end = 3 + int.from_bytes(frame[1:3], "big")
                await ws.send(b"\x05" + frame[1 : event_end + 4] + b'{"ok":' + frame[event_end + 4 :] + b"}")
            elif kind == 0:
                broadcast(room, frame)
    finally:
        room.discard(ws)


async def main():
    # Closing thousands of idle connections at the end of a run is expected: no tracebacks.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    async with serve(
        handler, "127.0.0.1", 0, subprotocols=["stelar.v1"], compression=None, max_size=None
    ) as server:
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        stopped = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()


if __name__ == "__main__":
    asyncio.run(main())
