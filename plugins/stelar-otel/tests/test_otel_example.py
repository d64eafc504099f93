"""examples/otel_console.py runs as written and prints its spans: the client's span the parent of
the server's ``process`` spans, a handler's span and its room send inside its ``process`` span, the
delivery inside the send; then the same trace as a tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "otel_console.py"


def test_the_console_example_prints_one_trace_from_the_client_to_the_delivery():
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "add -> 3" in lines and "reader got {'text': 'hello'}" in lines
    spans = [json.loads(line) for line in lines if line.startswith("{")]
    by_name = {span["name"]: span for span in spans if span["name"] != "connect"}
    assert set(by_name) == {
        "user sends",
        "process chat",
        "store message",
        "send chat:*",
        "process chat:*",
        "process add",
    }
    assert [span["name"] for span in spans].count("connect") == 2

    def parent(name: str) -> str:
        return next(span["name"] for span in by_name.values() if span["span"] == by_name[name]["child_of"])

    assert parent("process chat") == parent("process add") == "user sends"
    assert parent("store message") == parent("send chat:*") == "process chat"
    assert parent("process chat:*") == "send chat:*"
    assert by_name["process chat:*"]["stelar.recipients"] == 2
    tree = [line.split(" (")[0] for line in lines[lines.index("reader got {'text': 'hello'}") + 1 :]]
    assert tree == [
        "user sends",
        "  process chat",
        "    store message",
        "    send chat:*",
        "      process chat:*",
        "  process add",
    ]
