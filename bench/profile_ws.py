"""Where a WebSocket connection and a WebSocket ACK round trip spend stelar's server time (issue 18).

    bench/.venv/bin/python bench/profile_ws.py churn|ack [asyncio|uvloop]

Runs one scenario of bench/run against stelar_relay.py ws under cProfile (the measured part only)
and prints the server's time by part: asyncio, websockets, the hub, stelar-ws, ... then the top
functions. cProfile slows what it measures; read the shares, not the rates.
"""

from __future__ import annotations

import asyncio
import collections
import pstats
import sys
import tempfile
from pathlib import Path

from compare import ServerProcess, python
from loadgen import WebSocketPeer, Window, ack_round_trips, churn, local

PARTS = (
    ("site-packages/websockets", "websockets"),
    ("stelar_core/hub", "stelar hub"),
    ("stelar_ws", "stelar-ws"),
    ("stelar_core/transports", "stelar transports"),
    ("stelar_core", "stelar core, other"),
    ("asyncio", "asyncio"),
    ("uvloop", "uvloop"),
)


def part(file: str, function: str) -> str:
    if file == "~":
        return f"built-in {function}"
    return next((name for marker, name in PARTS if marker in file), Path(file).name)


def main() -> None:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "ack"
    event_loop = sys.argv[2] if len(sys.argv) > 2 else "asyncio"
    profile = Path(tempfile.mkdtemp()) / f"{scenario}.prof"
    server = ServerProcess(python("stelar_relay.py", "ws", event_loop, "--profile", str(profile)))
    try:
        window = Window(server.pid, profiled=True)
        if scenario == "churn":
            figures = asyncio.run(churn(WebSocketPeer, local(server.port), window, 3000, 50))
        else:
            figures = asyncio.run(ack_round_trips(WebSocketPeer, local(server.port), window, 50, 400))
    finally:
        server.stop()
    stats = pstats.Stats(str(profile))
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    shares: collections.Counter[str] = collections.Counter()
    for (file, _, function), entry in raw.items():
        shares[part(file, function)] += entry[2]
    print(f"stelar ws ({event_loop}), {scenario}: {figures['rate']:,.0f}/s under cProfile\n")
    print("| part | share of the server's time |\n|---|---:|")
    for name, seconds in shares.most_common(12):
        print(f"| {name} | {seconds / total:.1%} |")
    print()
    stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
