"""examples/otel_console.py runs as written and prints its spans: a handler's span the child of
its ``process`` span, the request's span beside them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "otel_console.py"


def test_the_console_example_prints_a_handlers_span_inside_its_process_span():
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "add -> 3" in lines
    spans = {span["name"]: span for span in map(json.loads, (line for line in lines if line.startswith("{")))}
    assert set(spans) == {"store message", "process chat", "process add"}
    assert spans["store message"]["child_of"] == spans["process chat"]["span"]
    assert spans["process chat"]["kind"] == spans["process add"]["kind"] == "CONSUMER"
    assert spans["process add"]["messaging.operation.name"] == "request"
