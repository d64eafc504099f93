"""The README's quick start runs as written."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart_runs_and_prints_the_conversation():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ann got {'id': ") and lines[0].endswith("'name': 'ann'}")
    assert lines[2] == "bob got {'from': 'ann', 'text': 'hello!'}"
    assert lines[3] == "request -> {'id': 1, 'name': 'John', 'role': 'user'}"
    assert lines[4] == "stats: 2 clients, ['general'] rooms"
