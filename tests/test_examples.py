"""The README's quick start runs as written."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def printed(example: str) -> list[str]:
    """The lines ``examples/<example>`` prints, run as written (it must exit cleanly)."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_quickstart_runs_and_prints_the_conversation():
    assert printed("quickstart.py") == [
        "ann got {'name': 'ann', 'via': 'ws'}",
        "bot got {'from': 'ann', 'text': 'hello from the browser side'}",
        "request -> {'id': 1, 'name': 'John', 'asked_by': 'bot'}",
        "stats: {'ws': 1, 'tcp': 1}",
    ]


async def test_the_tcp_server_and_client_examples_talk():
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "tcp_server.py"), "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        line = (await asyncio.wait_for(server.stdout.readline(), 30)).decode()
        assert line.startswith("listening on tcp://127.0.0.1:")
        url = line.split()[-1]
        client = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLES / "tcp_client.py"), url, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(client.communicate(), 30)
        lines = out.decode().splitlines()
        assert client.returncode == 0
        assert lines[0].startswith("connected as ")
        assert lines[1:] == ["price: {'symbol': 'ACME', 'price': 42.0}", "joined: True"]
    finally:
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 30) == 0


def test_the_chat_recovery_example_recovers_then_reloads():
    assert printed("chat_recovery.py") == [
        "recovered 3 missed",
        "ann shows 3 messages, the last: bob 0.2",
        "not recovered (history_lost): reloaded 11",
        "ann shows 11 messages, the last: bob 1.7",
    ]
