"""stelar doing the reference work through ASGI: its WebSocket served by uvicorn
(``stelar_asgi``), echo ACKs, "fan" events relayed to the room.

    python bench/servers/stelar_asgi_relay.py [--profile FILE]   # prints "PORT <n>", serves until SIGTERM

``--profile FILE`` profiles (cProfile) from SIGUSR1 to SIGUSR2 and writes FILE then (uvicorn
re-raises SIGTERM once it has stopped, so the process does not live to write it at exit).
"""

import asyncio
import cProfile
import signal
import sys

from stelar_relay import relay_server
from uvicorn_ready import serve

from stelar_asgi import stelar_asgi

PROFILE = cProfile.Profile()


def stop_profiling(path: str) -> None:
    PROFILE.disable()
    PROFILE.dump_stats(path)


async def main():
    server = relay_server(transports=[])
    if "--profile" in sys.argv:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, PROFILE.enable)
        loop.add_signal_handler(signal.SIGUSR2, stop_profiling, sys.argv[sys.argv.index("--profile") + 1])
    # uvicorn stops on SIGTERM by itself, and its lifespan shutdown stops stelar.
    await serve(stelar_asgi(server), lifespan="on")


if __name__ == "__main__":
    asyncio.run(main())
