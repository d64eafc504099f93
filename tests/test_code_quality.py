"""ruff and mypy are part of the test suite, so the one test command checks everything."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run(*command):
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_lint_is_clean():
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean():
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


PACKAGES = [ROOT / "stelar_core", *sorted((ROOT / "plugins").glob("stelar-*/stelar_*"))]


def sources():
    return [path for package in PACKAGES for path in sorted(package.rglob("*.py"))]


def test_every_module_cited_in_the_code_exists():
    """Docstrings and comments cite modules as ``stelar_core.x.y``: each must resolve (one
    cited a module that never existed)."""
    import importlib

    cited = {
        name
        for path in sources()
        for name in re.findall(r"``(stelar_[a-z_]+(?:\.[A-Za-z_]+)+)``", path.read_text())
    }
    assert cited, "the scan found nothing: its pattern is wrong"
    missing = []
    for name in sorted(cited):
        module, _, attribute = name, "", ""
        while True:
            try:
                found = importlib.import_module(module)
                break
            except ModuleNotFoundError:
                module, _, last = module.rpartition(".")
                attribute = f"{last}.{attribute}".strip(".")
        for part in filter(None, attribute.split(".")):
            found = getattr(found, part, None)
        if found is None:
            missing.append(name)
    assert missing == []


def test_no_module_level_constant_is_left_unused():
    """A constant defined in the packages and named nowhere else is dead (or defined twice)."""
    texts = {path: path.read_text() for path in sources()}
    corpus = "\n".join(texts.values())
    unused = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, text in texts.items()
        for name in re.findall(r"^([A-Z][A-Z0-9_]+)\s*(?::[^=\n]+)?=", text, re.MULTILINE)
        if len(re.findall(rf"\b{name}\b", corpus)) == 1
    ]
    assert unused == []
