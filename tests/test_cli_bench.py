"""`stelar bench` against a real `stelar serve` process (the relay app, as a user would point it at
a deployment), every scenario on small bounded counts, and its bad input."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys

import pytest

from stelar_core.commands.bench import explain, render_bar, table
from stelar_core.loadgen import Progress


def test_the_progress_bar_and_the_table():
    assert render_bar(Progress(total=200, done=50, phase="deliveries"), width=10) == (
        "[##........]  25% deliveries 50/200"
    )
    done = Progress(total=10, phase="requests", read=lambda: 10)
    assert render_bar(done, width=4) == "[####] 100% requests 10/10"
    lines = table(
        "ack", "tcp://h:1", {"rate": 1234.5, "p50": 80.2, "p99": 150.9, "seconds": 2, "generator_cpu": 0.5}
    )
    assert lines[2:] == [
        "| figure | value |",
        "|---|---:|",
        "| round trips/s | 1,234 |",
        "| p50 µs | 80 |",
        "| p99 µs | 151 |",
        "| seconds | 2.00 |",
        "| load generator CPU (1.0 = a core) | 0.50 |",
    ]
    refused = ConnectionError("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 79")
    assert explain(refused) == (
        "the server refused a connection (HTTP/1.1 429 Too Many Requests): its per-IP limit, "
        "max_connections_per_ip?"
    )


async def bench(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stelar_core.cli",
        "bench",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


def figures(out: str) -> dict[str, float]:
    return {
        name: float(value.replace(",", ""))
        for name, value in re.findall(r"^\| ([^|]+?) \| (-?[\d,.]+) \|$", out, flags=re.MULTILINE)
    }


@contextlib.contextmanager
def serving(*flags):
    """`stelar serve` on free ports (one process, as a deployment): its pid and URLs."""
    process = subprocess.Popen(
        [
            *[sys.executable, "-m", "stelar_core.cli", "serve", "--ws-port", "0", "--tcp-port", "0"],
            *["--max-connections-per-ip", "100000", "--event-loop", "asyncio", *flags],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    urls = {}
    try:
        while len(urls) < 2:
            line = process.stdout.readline()
            assert line, "stelar serve did not start"
            name, url = re.match(r"stelar: (\w+) listening on (\S+)", line).groups()
            urls[name] = url
        yield {"pid": process.pid, **urls}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        process.stdout.close()


@pytest.fixture(scope="module")
def relay():
    """The relay of `stelar serve` for the whole module, with its default rate limit."""
    with serving() as urls:
        yield urls


@pytest.mark.one_loop
@pytest.mark.parametrize("transport", ["ws", "tcp"])
@pytest.mark.parametrize(
    ("scenario", "counts", "figure"),
    [
        ("fanout", ["--members", "100", "--messages", "20"], "deliveries/s"),
        ("ack", ["--clients", "5", "--requests", "40"], "round trips/s"),
        ("churn", ["--cycles", "60", "--concurrency", "10"], "connections/s"),
        ("idle", ["--connections", "300"], "bytes per idle connection"),
    ],
)
async def test_every_scenario_against_a_running_server(relay, transport, scenario, counts, figure):
    code, out, err = await bench(
        relay[transport], "--scenario", scenario, *counts, "--server-pid", str(relay["pid"])
    )
    assert code == 0, err
    assert out.startswith(f"stelar bench {relay[transport]} --scenario {scenario}")
    found = figures(out)
    assert found[figure] > 0
    # Read from /proc in clock ticks: a short run may measure 0.00; the rows are there.
    assert found["server CPU (1.0 = a core)"] >= 0 and found["load generator CPU (1.0 = a core)"] >= 0
    if scenario == "ack":
        assert 0 < found["p50 µs"] <= found["p99 µs"]


@pytest.mark.one_loop
async def test_paced_fan_out_reports_latency_and_idle_reads_the_health_route(relay):
    code, out, err = await bench(
        relay["ws"], "--scenario", "fanout", "--members", "50", "--messages", "10", "--paced"
    )
    assert code == 0, err
    found = figures(out)
    assert 0 < found["p50 µs"] <= found["p99 µs"] and "server CPU (1.0 = a core)" not in found
    code, out, err = await bench(relay["ws"], "--scenario", "idle", "--connections", "300")  # /health's RSS
    assert code == 0, err
    assert figures(out)["bytes per idle connection"] > 0


@pytest.mark.one_loop
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["http://127.0.0.1:1/", "--scenario", "ack"],
            "expected ws://, wss://, tcp:// or tcps:// with a host and a port",
        ),
        (["tcp://127.0.0.1", "--scenario", "ack"], "with a host and a port"),
        (
            ["tcp://127.0.0.1:1", "--scenario", "idle"],
            "needs the server's memory: give --health URL or --server-pid",
        ),
        (["tcp://127.0.0.1:1", "--scenario", "fanout", "--members", "0"], "expected 1 to 50,000, got 0"),
        (["tcp://127.0.0.1:1", "--scenario", "flood"], "invalid choice: 'flood'"),
    ],
)
async def test_bad_input_is_named(args, message):
    code, _, err = await bench(*args)
    assert code == 2 and message in err


@pytest.mark.one_loop
async def test_a_rate_limited_run_says_so(relay):
    code, out, err = await bench(relay["tcp"], "--scenario", "ack", "--clients", "1", "--requests", "500")
    assert code == 1 and out == ""  # the relay app's default rate limit: 100 messages a second
    assert "(rate limit exceeded)" in err and "for stelar serve, pass --rate-limit off" in err


@pytest.mark.one_loop
async def test_the_flag_the_rate_limited_run_names_lets_the_same_run_through():
    with serving("--rate-limit", "off") as unlimited:
        code, out, err = await bench(
            unlimited["tcp"], "--scenario", "ack", "--clients", "1", "--requests", "500"
        )
    assert code == 0, err
    assert figures(out)["round trips/s"] > 0  # every one of the 500 was answered, or the run fails


@pytest.mark.one_loop
async def test_a_server_that_is_not_there_fails_in_a_sentence():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = await bench(f"tcp://127.0.0.1:{port}", "--scenario", "ack", "--clients", "1")
    assert code == 1 and out == ""
    assert err.startswith("stelar bench: ack failed after ") and "Connect call failed" in err
