"""stelar-tcp next to a bare asyncio length-prefixed relay, measured in the same run.

    .venv/bin/python bench/tcp.py            # ~2 minutes; --repeat N, --quick

Each system runs in a fresh server process pinned to CPU 0; the load generator (loadgen.py)
runs on CPU 1. Scenarios: ACK round trips/s with p50/p99 (1 and 50 clients), fan-out
deliveries/s to 1,000 room members, RSS growth per idle connection (5,000 connections; the
open-files limit is raised to its hard limit).
"""

import argparse
import sys

from loadgen import HERE, LengthPrefixedPeer, ack_round_trips, fan_out, idle_memory, prepare, run_table

SYSTEMS = {
    "stelar tcp": [str(HERE / "servers" / "stelar_tcp_relay.py")],
    "raw asyncio relay": [str(HERE / "servers" / "raw_tcp_relay.py")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description="stelar-tcp against a bare asyncio relay")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    limit = prepare()
    scale = 0.1 if args.quick else 1.0
    idle = min(5000, (limit - 200) // 2)
    peer = LengthPrefixedPeer
    scenarios = {
        "ACK round trips/s, 1 client": lambda s: ack_round_trips(peer, s.port, 1, int(20_000 * scale)),
        "ACK round trips/s, 50 clients": lambda s: ack_round_trips(peer, s.port, 50, int(1_000 * scale)),
        "fan-out deliveries/s, 1,000 members": lambda s: fan_out(peer, s.port, 1000, int(200 * scale)),
        f"RSS bytes per idle connection ({idle:,})": lambda s: idle_memory(peer, s.port, s.pid, idle),
    }
    print(
        f"stelar-tcp vs a bare asyncio relay; server on CPU 0, generator on CPU 1; medians of {args.repeat}"
    )
    print(f"Python {sys.version.split()[0]}, open-files limit {limit}\n")
    run_table(SYSTEMS, {name: run for name, run in scenarios.items() if args.only in name}, args.repeat)


if __name__ == "__main__":
    main()
