"""stelar-ws's compiled modules (``stelar_ws.compiled``: the inbound fast path, the upgrade read):
the extension runs when it is built, the source with ``STELAR_NO_EXTENSIONS=1``, and the two
split generated streams alike (the upgrade read's equivalence is in test_upgrade.py, beside its
generator)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelar_core.testing.compiled import EXTENSION_SUFFIXES, extension_built, pure_source, source_file
from stelar_ws.compiled import ACCELERATED

PURE_ASKED = os.environ.get("STELAR_NO_EXTENSIONS", "") not in ("", "0")
# The compiled and pure implementations side by side: only where the extensions are built and run.
needs_compiled = pytest.mark.skipif(
    PURE_ASKED or not all(extension_built(name) for name in ACCELERATED),
    reason="stelar-ws's accelerator is not built here, or STELAR_NO_EXTENSIONS is set",
)


@pytest.mark.parametrize("name", ACCELERATED)
def test_the_extension_runs_when_built_and_the_source_when_asked(name):
    running = importlib.import_module(name).__file__ or ""
    assert running.endswith(EXTENSION_SUFFIXES) == (extension_built(name) and not PURE_ASKED)


def test_stelar_no_extensions_loads_the_source():
    script = "import importlib, sys\nprint(*(importlib.import_module(n).__file__ for n in sys.argv[1:]))"
    env = {**os.environ, "STELAR_NO_EXTENSIONS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, *ACCELERATED], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(source_file(name)) for name in ACCELERATED]


def items(frames_module: ModuleType, stream: bytes, cuts: list[int], max_size: int) -> list[object]:
    splitter = frames_module.InboundSplitter(max_size)
    seen: list[object] = []
    start = 0
    for end in [*sorted(cut % (len(stream) + 1) for cut in cuts), len(stream)]:
        splitter.feed(stream[start:end])
        while (item := splitter.next()) is not None:
            seen.append(item)
        start = max(start, end)
    return [*seen, splitter.rest()]


# Frames as a client sends them: masked or not, any opcode and flags, short or 16-bit lengths.
frame = st.builds(
    lambda first, mask, payload: (
        bytes((first, (0x80 if mask else 0) | len(payload)))
        + (b"\x01\x02\x03\x04" if mask else b"")
        + payload
    ),
    st.integers(0, 255),
    st.booleans(),
    st.binary(max_size=125),
) | st.builds(
    lambda payload: bytes((0x82, 0xFE)) + len(payload).to_bytes(2, "big") + b"\0\0\0\0" + payload,
    st.binary(min_size=126, max_size=400),
)


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(
    st.lists(frame, max_size=6), st.lists(st.integers(0, 5000), max_size=5), st.sampled_from([64, 300, 2**20])
)
def test_the_compiled_splitter_gives_what_the_source_gives(frames, cuts, max_size):
    import stelar_ws.frames as compiled_frames

    stream = b"".join(frames)
    assert items(compiled_frames, stream, cuts, max_size) == items(
        pure_source("stelar_ws.frames"), stream, cuts, max_size
    )
