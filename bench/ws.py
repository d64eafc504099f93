"""stelar-ws next to a bare ``websockets`` server doing the same work, in the same run.

    .venv/bin/python bench/ws.py             # ~3 minutes; --repeat N, --quick

Systems: stelar over WebSocket; a bare ``websockets`` server using its own ``broadcast()``;
stelar with the shared broadcast framing turned off (every frame through the library's
``send_binary`` per recipient), to show what framing a broadcast once saves. Scenarios as in
bench/tcp.py; ``--only fan-out`` runs one.
"""

import argparse
import sys

from loadgen import HERE, WebSocketPeer, ack_round_trips, fan_out, idle_memory, prepare, run_table

STELAR = str(HERE / "servers" / "stelar_ws_relay.py")
SYSTEMS = {
    "stelar ws": [STELAR],
    "bare websockets": [str(HERE / "servers" / "websockets_relay.py")],
    "stelar ws, library send per recipient": [STELAR, "--frame-per-recipient"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description="stelar-ws against a bare websockets server")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    limit = prepare()
    scale = 0.1 if args.quick else 1.0
    idle = min(5000, (limit - 200) // 2)
    peer = WebSocketPeer
    scenarios = {
        "ACK round trips/s, 1 client": lambda s: ack_round_trips(peer, s.port, 1, int(10_000 * scale)),
        "ACK round trips/s, 50 clients": lambda s: ack_round_trips(peer, s.port, 50, int(500 * scale)),
        "fan-out deliveries/s, 1,000 members": lambda s: fan_out(peer, s.port, 1000, int(200 * scale)),
        f"RSS bytes per idle connection ({idle:,})": lambda s: idle_memory(peer, s.port, s.pid, idle),
    }
    print(f"stelar-ws vs bare websockets; server on CPU 0, generator on CPU 1; medians of {args.repeat}")
    print(f"Python {sys.version.split()[0]}, open-files limit {limit}\n")
    run_table(SYSTEMS, {name: run for name, run in scenarios.items() if args.only in name}, args.repeat)


if __name__ == "__main__":
    main()
