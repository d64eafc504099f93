"""stelar-tcp next to a bare asyncio length-prefixed relay, measured in the same run.

    .venv/bin/python bench/tcp.py            # ~2 minutes; --repeat N, --quick, --only fan-out

Each system runs in a fresh server process pinned to CPU 0; the load generator (loadgen.py)
runs on CPU 1. Scenarios: ACK round trips/s with p50/p99 (1 and 50 clients), fan-out
deliveries/s to 1,000 room members, RSS growth per idle connection (5,000 connections; the
open-files limit is raised to its hard limit).
"""

from loadgen import HERE, LengthPrefixedPeer, main

SYSTEMS = {
    "stelar tcp": [str(HERE / "servers" / "stelar_relay.py"), "tcp"],
    "raw asyncio relay": [str(HERE / "servers" / "raw_tcp_relay.py")],
}

if __name__ == "__main__":
    main("stelar-tcp vs a bare asyncio relay", SYSTEMS, LengthPrefixedPeer, (20_000, 1_000))
