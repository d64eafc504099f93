"""stelar-ws next to a bare ``websockets`` server doing the same work, in the same run.

    .venv/bin/python bench/ws.py             # ~6 minutes; --repeat N, --quick, --only fan-out

Systems: stelar over WebSocket; a bare ``websockets`` server using its own ``broadcast()``;
stelar with the shared broadcast framing turned off (every frame through the library's
``send_binary`` per recipient), to show what framing a broadcast once saves. Scenarios as in
bench/tcp.py.
"""

from loadgen import HERE, WebSocketPeer, main

STELAR = str(HERE / "servers" / "stelar_relay.py")
SYSTEMS = {
    "stelar ws": [STELAR, "ws"],
    "bare websockets": [str(HERE / "servers" / "websockets_relay.py")],
    "stelar ws, library send per recipient": [STELAR, "ws", "--frame-per-recipient"],
}

if __name__ == "__main__":
    main("stelar-ws vs bare websockets", SYSTEMS, WebSocketPeer, (10_000, 500))
