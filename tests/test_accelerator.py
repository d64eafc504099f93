"""The compiled hot path (stelar_core.compiled): the same behaviour as the pure Python source,
byte for byte and error for error, on generated frames, streams cut anywhere and bad input; and
the switch that chooses between them (STELAR_NO_EXTENSIONS, stelar_core.COMPILED)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import stelar_core
from stelar_core import compiled
from stelar_core.errors import ProtocolError
from stelar_core.testing.compiled import pure_source

ROOT = Path(__file__).resolve().parent.parent
needs_compiled = pytest.mark.skipif(
    not stelar_core.COMPILED, reason="the accelerator is not built here (scripts/build_accelerator.py)"
)


def outcome(call, *args):
    """What a call gives: its result as plain values, or its error's type and words."""
    try:
        result = call(*args)
    except (ProtocolError, ValueError, TypeError) as exc:
        return ("raised", type(exc).__name__, getattr(exc, "code", None), str(exc))
    return ("returned", tuple(result) if isinstance(result, tuple) else result)


def test_the_switch_says_which_implementation_runs():
    assert bool(compiled.compiled_modules()) == stelar_core.COMPILED
    frames = sys.modules["stelar_core.protocol.frames"]
    assert compiled.is_extension(frames) == ("stelar_core.protocol.frames" in compiled.compiled_modules())
    assert compiled.describe().startswith("compiled" if stelar_core.COMPILED else "pure Python")


def test_stelar_no_extensions_makes_the_source_run():
    script = (
        "import stelar_core, stelar_core.protocol.frames as f, stelar_core.compiled as c\n"
        "print(stelar_core.COMPILED, f.__file__.endswith('.py'), c.describe())"
    )
    env = {**os.environ, compiled.NO_EXTENSIONS_ENV: "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False True pure Python (STELAR_NO_EXTENSIONS is set)"
    env[compiled.NO_EXTENSIONS_ENV] = "0"  # 0 (or empty) asks for nothing: the extension if built
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    built = any(
        path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        for path in (ROOT / "stelar_core" / "protocol").glob("frames.*")
    )
    assert result.stdout.split()[:2] == [str(built), str(not built)]


@needs_compiled
def test_the_compiled_modules_are_extensions_and_their_source_is_not():
    for name in compiled.ACCELERATED:
        assert compiled.is_extension(importlib.import_module(name))
        assert not compiled.is_extension(pure_source(name))


FRAMES = "stelar_core.protocol.frames"
STREAM = "stelar_core.protocol.stream"


@needs_compiled
@given(st.binary(max_size=80))
def test_decoding_any_bytes_gives_the_same_frame_or_the_same_error(data):
    fast, pure = importlib.import_module(FRAMES), pure_source(FRAMES)
    assert outcome(fast.decode_frame, data) == outcome(pure.decode_frame, data)


@needs_compiled
@given(
    kind=st.integers(0, 13),
    event=st.text(max_size=20),
    payload=st.binary(max_size=40),
    ack_id=st.none() | st.integers(-1, 2**32),
    trace=st.none()
    | st.text(max_size=60)
    | st.just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
)
def test_encoding_gives_the_same_bytes_or_the_same_error(kind, event, payload, ack_id, trace):
    fast, pure = importlib.import_module(FRAMES), pure_source(FRAMES)
    made = outcome(fast.encode_frame, fast.FrameType(kind), event, payload, ack_id, trace)
    assert made == outcome(pure.encode_frame, pure.FrameType(kind), event, payload, ack_id, trace)
    if made[0] == "returned":
        assert outcome(fast.decode_frame, made[1]) == outcome(pure.decode_frame, made[1])


@needs_compiled
@given(
    frames=st.lists(st.binary(min_size=3, max_size=30), max_size=8),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    garbage=st.binary(max_size=8),
    max_frame_size=st.sampled_from([3, 16, 64, 1 << 20]),
)
def test_a_stream_cut_anywhere_parses_the_same(frames, cuts, garbage, max_frame_size):
    fast, pure = importlib.import_module(STREAM), pure_source(STREAM)
    data = b"".join(fast.length_prefixed(frame) for frame in frames) + garbage
    assert data == b"".join(pure.length_prefixed(frame) for frame in frames) + garbage

    def parse(module: ModuleType) -> list:
        parser, seen, start = module.StreamParser(max_frame_size), [], 0
        for end in [*sorted(cut for cut in cuts if cut < len(data)), len(data)]:
            try:
                parser.receive_data(data[start:end])
                while (frame := parser.next_frame()) is not None:
                    seen.append(frame)
            except ProtocolError as exc:
                seen.append(("raised", exc.code, exc.reason))
                break
            start = end
        return [*seen, parser.buffered]

    assert parse(fast) == parse(pure)


def wheel(tmp_path: Path, source: Path = ROOT, **env: str) -> Path:
    """stelar-core's wheel as ``pip wheel`` builds it from ``source`` (this environment's
    hatchling, mypy and setuptools: no download)."""
    environment = {key: value for key, value in os.environ.items() if key != compiled.NO_EXTENSIONS_ENV}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        env={**environment, **env},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = tmp_path.glob("stelar_core-*.whl")
    return built


@needs_compiled
def test_the_wheel_carries_the_compiled_modules_and_a_pure_one_can_be_built(tmp_path):
    compiled_wheel = wheel(tmp_path / "compiled")
    assert f"-cp3{sys.version_info.minor}-" in compiled_wheel.name  # a wheel for this platform
    assert not compiled_wheel.name.endswith("-none-any.whl")
    names = zipfile.ZipFile(compiled_wheel).namelist()
    for module in compiled.ACCELERATED:
        path = module.replace(".", "/")
        assert f"{path}.py" in names  # the source is there too: the pure path stays complete
        assert any(name.startswith(f"{path}.") and name.endswith(".so") for name in names)
    assert any(name.startswith("stelar_core_accelerator__mypyc") for name in names)
    pure = wheel(tmp_path / "pure", **{compiled.NO_EXTENSIONS_ENV: "1"})
    assert pure.name.endswith("-py3-none-any.whl")
    assert not [name for name in zipfile.ZipFile(pure).namelist() if name.endswith(".so")]


def test_without_a_c_compiler_the_install_goes_on_pure_and_imports(tmp_path, python_with):
    # A machine with no compiler, from what the sdist holds (no extensions built yet): the build
    # says so and goes on, the wheel is pure, and the installed package runs its source.
    source = tmp_path / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
    shutil.copytree(ROOT / "stelar_core", source / "stelar_core", ignore=skip)
    (source / "scripts").mkdir()
    for name in ("pyproject.toml", "README.md", "hatch_build.py", "scripts/build_accelerator.py"):
        shutil.copy(ROOT / name, source / name)
    no_compiler = tmp_path / "bin"  # PATH: nothing but an empty folder
    no_compiler.mkdir()
    built = wheel(tmp_path / "wheel", source, PATH=str(no_compiler))
    assert built.name.endswith("-py3-none-any.whl")
    assert not [name for name in zipfile.ZipFile(built).namelist() if name.endswith((".so", ".pyd"))]
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(built)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    script = (
        "import stelar_core\n"
        "from stelar_core.protocol import FrameType, decode_frame, encode_frame\n"
        "frame = decode_frame(encode_frame(FrameType.JSON, 'hi', b'1'))\n"
        "print(stelar_core.__file__, stelar_core.COMPILED, frame.event)"
    )
    ran = python_with(site, ["-c", script], cwd=tmp_path)  # (not here: the checkout's own package)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [str(site / "stelar_core" / "__init__.py"), "False", "hi"]
