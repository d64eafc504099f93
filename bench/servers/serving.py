"""What every peer server of the benchmark does around its own work: say its port, serve until
SIGTERM, and run on the loop its arguments name."""

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any


async def announce_and_serve(port: int) -> None:
    """Print "PORT <n>" (what compare.ServerProcess waits for), then wait for SIGTERM."""
    print("PORT", port, flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()


def run(main: Coroutine[Any, Any, None]) -> None:
    """``main`` on uvloop when "uvloop" is among the arguments, else on asyncio's loop."""
    if "uvloop" in sys.argv[1:]:
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
