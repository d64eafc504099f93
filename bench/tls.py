"""The TLS scenario of bench/run: connection churn over TLS, stelar-tls against asyncio's own.

Each cycle connects, completes the TLS handshake (TLS 1.3, an ECDSA certificate made per run),
sends stelar's connect frame, waits for the welcome and closes; 50 at a time. Side by side on
the same loop: stelar tcps:// (stelar-tls: its own accept loop, a handshake per connection with
the newest certificate, counted and hooked), the bare asyncio relay behind
``loop.create_server(ssl=...)`` (one fixed context, failures only logged) as the ceiling, and
stelar tcp:// in plaintext for the cost of TLS itself.

    bench/.venv/bin/python bench/tls.py [--quick]   # prints the table; bench/run writes it into
                                                    # bench/RESULTS.md

Loopback only; every scenario is bounded and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import tempfile
from pathlib import Path

import trustme
from compare import ServerProcess, python, write_section
from loadgen import LengthPrefixedPeer, Target, Window, churn

CONCURRENCY = 50


def systems(cert: str, key: str, event_loop: str) -> dict[str, tuple[str, ...]]:
    return {
        f"stelar tcps:// ({event_loop})": python("stelar_relay.py", "tcp", event_loop, "--tls", cert, key),
        f"asyncio create_server(ssl=) relay ({event_loop})": python(
            "raw_tcp_relay.py", event_loop, "--tls", cert, key
        ),
        f"stelar tcp://, plaintext ({event_loop})": python("stelar_relay.py", "tcp", event_loop),
    }


def measure(argv: tuple[str, ...], tls: ssl.SSLContext, cycles: int) -> dict[str, float]:
    server = ServerProcess(argv)
    try:
        window = Window(server.pid)
        target = Target(server.port, tls=tls if "--tls" in argv else None)
        return asyncio.run(churn(LengthPrefixedPeer, target, window, cycles, CONCURRENCY))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the connections")
    parser.add_argument("--repeat", type=int, default=3, help="runs per system; the median is kept")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    cycles = 300 if args.quick else 3000
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    context = ssl.create_default_context()
    authority.configure_trust(context)  # the load generator trusts the run's CA
    lines = [
        f"### TLS: connection churn, {cycles:,} cycles of connect, TLS handshake, stelar handshake "
        f"and close, {CONCURRENCY} at a time",
        "",
        "Server CPU per connection is the server process's CPU time over the run divided by the",
        "connections (the server pinned to CPU 0). `bench/.venv/bin/python bench/tls.py`.",
        "",
        "| system | connections/s | server CPU µs per connection |",
        "|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        for event_loop in ("asyncio", "uvloop"):
            for name, argv in systems(str(cert), str(key), event_loop).items():
                runs = [measure(argv, context, cycles) for _ in range(1 if args.quick else args.repeat)]
                rate = statistics.median(run["rate"] for run in runs)
                cpu = statistics.median(run["server_cpu"] * run["seconds"] / cycles * 1e6 for run in runs)
                lines.append(f"| {name} | {rate:,.0f} | {cpu:,.0f} |")
                print(lines[-1], flush=True)
    print("\n".join(lines))
    if not args.no_write:
        write_section("tls", lines)


if __name__ == "__main__":
    main()
