"""Instructions per operation, counted by callgrind: a figure that holds still on a noisy machine.

    bench/.venv/bin/python bench/instructions.py          # ~8 minutes, prints a markdown table
    .venv/bin/python bench/instructions.py --in-process   # ~4 minutes: the server paths only
    .venv/bin/python bench/instructions.py --in-process --tracing   # and ACKs with stelar-otel on

Wall-clock and CPU-time figures on a shared 2-core machine move by 30-50% from one hour to the
next; callgrind counts the instructions a process executes, which repeat to within a fraction of
a percent whatever else runs. Each figure is (instructions of a run doing N operations minus
those of a run doing none) / N, so start-up and set-up cancel out. Issue 18's before/after
figures in docs/architecture.md are these; "before" is this script run with ``PYTHONPATH``
naming the packages of the earlier commit's checkout.

- **WS ACK request, server path**: a ``WsConnection`` of a relay server (bench/servers/
  stelar_relay.py) fed one masked ACK request frame, answering it to a stand-in transport: the
  fast path, the hub, the answer's framing and write. In-process: no event loop, no socket.
- **WS connection, server path**: the same for one whole connection: upgrade request, 101,
  connect frame, welcome, close frame, connection lost. **TCP connection**: connection made,
  connect frame, welcome, connection lost.
- **WS fan-out, per delivery**: one ``server.to(room, ...)`` to 100 members, written to each.
- **WS ACK round trip, whole server**: the relay server process itself under callgrind, 50
  clients of the load generator (outside it) asking ``echo``: loop, transports, everything; and
  picows doing the same work, the reference of issue 18's targets.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "servers"))

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: stelar.v1\r\n\r\n"
)
ROUND_TRIPS_PER_CLIENT = 100
FAN_OUT_MEMBERS = 100
# How the child traces, when it does: "SDK_RATIO,SAMPLE_RATIO" (--tracing).
TRACING = "STELAR_BENCH_TRACING"


def masked(payload: bytes, opcode: int = 2) -> bytes:
    mask = b"\x11\x22\x33\x44"
    assert len(payload) < 126
    return (
        bytes((0x80 | opcode, 0x80 | len(payload)))
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


async def in_process(scenario: str, count: int) -> None:
    """Run ``count`` operations of ``scenario`` on a relay server (bench/servers/stelar_relay.py)."""
    from stelar_relay import relay_server

    from stelar_core.protocol import FrameType, dump_json, encode_frame, length_prefixed
    from stelar_core.testing.transport import StandInTransport
    from stelar_tcp.server import TcpConnection, TcpTransport
    from stelar_ws.server import WsConnection, WsTransport

    tracing = os.environ.get(TRACING)
    options = {}
    if tracing:  # "SDK_RATIO,SAMPLE_RATIO": stelar-otel on, spans to nowhere (--tracing)
        from stelar_relay import trace_to_nowhere

        sdk_ratio, sample_ratio = map(float, tracing.split(","))
        trace_to_nowhere(sdk_ratio)
        options["otel"] = {"enabled": True, "metrics": False, "sample_ratio": sample_ratio}
    server = relay_server(port=0, tcp_port=0, **options)
    await server.start()
    ws = next(t for t in server.transports if isinstance(t, WsTransport))
    connect_frame = encode_frame(FrameType.CONNECT, "", dump_json({"auth": {}}))
    flush = ws.write_batch._flush  # what the loop runs at the end of an iteration

    async def opened() -> tuple[WsConnection, StandInTransport]:
        connection, stand_in = WsConnection(ws), StandInTransport()
        connection.connection_made(stand_in)
        connection.data_received(UPGRADE)
        if connection._tasks:  # before issue 18 admission was a task: let it finish
            await asyncio.gather(*connection._tasks)
        connection.data_received(masked(connect_frame))
        flush()
        assert len(stand_in.written) == 2, stand_in.written  # 101, welcome
        return connection, stand_in

    if scenario == "ws-ack":
        connection, stand_in = await opened()
        request = masked(encode_frame(FrameType.ACK_REQUEST, "echo", b'"hello there, how is everyone?"', 7))
        for _ in range(count):
            connection.data_received(request)
            flush()
        assert len(stand_in.written) == 2 + count
    elif scenario == "ws-connection":
        close = masked(struct.pack("!H", 1000), opcode=8)
        for _ in range(count):
            connection, stand_in = await opened()
            connection.data_received(close)
            flush()
            connection.connection_lost(None)
            assert stand_in.closed
    elif scenario == "ws-fan-out":
        members = [await opened() for _ in range(FAN_OUT_MEMBERS)]
        for connection, _ in members:
            connection.data_received(masked(encode_frame(FrameType.JOIN, "room")))
        flush()
        for _ in range(count):
            server.to("room", "fan", {"n": 1, "text": "hello there, how is everyone doing today?"})
            flush()
        assert all(len(stand_in.written) == 3 + count for _, stand_in in members)
    else:  # tcp-connection
        tcp = next(t for t in server.transports if isinstance(t, TcpTransport))
        for _ in range(count):
            link, stand_in = TcpConnection(tcp), StandInTransport()
            link.connection_made(stand_in)
            if link._admitting is not None:  # before issue 18 admission was a task
                await link._admitting
            link.data_received(length_prefixed(connect_frame))
            tcp.write_batch._flush()
            assert len(stand_in.written) == 1  # the welcome
            link.connection_lost(None)
    await server.stop()


def instructions(argv: list[str], env: dict[str, str] | None = None) -> int:
    """The instructions callgrind counted for ``argv``."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stderr
    match = re.search(r"Collected : (\d+)", out)
    assert match, out
    return int(match.group(1))


def per_op_in_process(scenario: str, count: int, tracing: str = "") -> float:
    me = [sys.executable, __file__, "--child", scenario]
    env = {**os.environ, TRACING: tracing}
    return (instructions([*me, str(count)], env) - instructions([*me, "0"], env)) / count


def whole_server(system: str, loop: str) -> float:
    """Instructions per ACK round trip of a relay server process (50 clients)."""
    from compare import ServerProcess, python
    from loadgen import WebSocketPeer, Window, ack_round_trips, local

    def counted(round_trips: int) -> int:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "callgrind.out"
            script = ("stelar_relay.py", "ws", loop) if system == "stelar" else ("picows_relay.py", loop)
            server = ServerProcess(
                ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *python(*script))
            )
            try:
                asyncio.run(ack_round_trips(WebSocketPeer, local(server.port), Window(), 50, round_trips))
            finally:
                server.stop()
            match = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
            assert match, "callgrind wrote no totals"
            return int(match.group(1))

    return (counted(1 + ROUND_TRIPS_PER_CLIENT) - counted(1)) / (50 * ROUND_TRIPS_PER_CLIENT)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        asyncio.run(in_process(sys.argv[2], int(sys.argv[3])))
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    os.environ.setdefault("PYTHONHASHSEED", "0")  # the same dict layouts in every run
    rows = [
        ("WS ACK request, server path (in-process)", per_op_in_process("ws-ack", 2000)),
        ("WS connection, server path (in-process)", per_op_in_process("ws-connection", 300)),
        ("TCP connection, server path (in-process)", per_op_in_process("tcp-connection", 300)),
        (
            f"WS fan-out, per delivery to {FAN_OUT_MEMBERS} members (in-process)",
            per_op_in_process("ws-fan-out", 200) / FAN_OUT_MEMBERS,
        ),
    ]
    if "--tracing" in sys.argv:
        # stelar-otel on (bench/tracing.py measures the same in time): a request left out by
        # sample_ratio, one the SDK's sampler drops, one recorded.
        for name, mode in (
            ("left out by sample_ratio", "1.0,0.0"),
            ("dropped by the SDK's sampler", "0.0,1.0"),
            ("recorded", "1.0,1.0"),
        ):
            rows.append(
                (f"WS ACK request, server path, traced: {name}", per_op_in_process("ws-ack", 2000, mode))
            )
    # The whole-server rows need bench/.venv (picows, the load generator's peers).
    for loop in () if "--in-process" in sys.argv else ("asyncio", "uvloop"):
        rows.append((f"WS ACK round trip, whole server, stelar ({loop})", whole_server("stelar", loop)))
        rows.append((f"WS ACK round trip, whole server, picows ({loop})", whole_server("picows", loop)))
    print("| operation | instructions |\n|---|---:|")
    for name, figure in rows:
        print(f"| {name} | {figure:,.0f} |")


if __name__ == "__main__":
    main()
