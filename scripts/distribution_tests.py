"""Each distribution's tests in an environment holding that distribution alone.

    python3 scripts/distribution_tests.py prepare        # .venvs/<dist>, made in parallel
    python3 scripts/distribution_tests.py run [DIST...]  # plugins/<dist>/tests in each

An environment gets stelar-core, the distribution with its ``test`` extra, and the other stelar
distributions that extra names as test peers (from this checkout, editable) and nothing else:
an import the distribution does not declare fails here, even though the full environment
(``.venv``) has every distribution. scripts/test runs ``prepare`` in the background while the
core's suite runs, then ``run``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
VENVS = ROOT / ".venvs"


def distributions() -> list[str]:
    return sorted(path.name for path in PLUGINS.iterdir() if (path / "tests").is_dir())


def requirements(dist: str) -> list[str]:
    """Its dependencies and its ``test`` extra."""
    project = tomllib.loads((PLUGINS / dist / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra: list[str] = project.get("optional-dependencies", {}).get("test", [])
    if not extra:
        sys.exit(f"plugins/{dist}/pyproject.toml declares no 'test' extra")
    return [*project.get("dependencies", []), *extra]


def peers(dist: str) -> list[str]:
    """The other stelar distributions it or its tests name (installed from this checkout)."""
    names = (re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0] for requirement in requirements(dist))
    return [name for name in names if name.startswith("stelar-") and name not in ("stelar-core", dist)]


def python(dist: str) -> Path:
    return VENVS / dist / "bin" / "python"


def prepare(dist: str) -> str:
    """Make (or refresh) the environment of ``dist``; returns its pip log on failure."""
    if not python(dist).exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / dist)], check=True)
    editables = ["-e", str(ROOT), "-e", f"{PLUGINS / dist}[test]"]
    for peer in peers(dist):
        editables += ["-e", str(PLUGINS / peer)]
    done = subprocess.run(
        [str(python(dist)), "-m", "pip", "install", "-q", *editables], capture_output=True, text=True
    )
    return "" if done.returncode == 0 else f"{dist}: pip failed\n{done.stdout}{done.stderr}"


def main() -> int:
    command, *names = sys.argv[1:] or ["run"]
    chosen = names or distributions()
    if command == "prepare":
        VENVS.mkdir(exist_ok=True)
        with ThreadPoolExecutor(max_workers=2) as pool:
            failures = [log for log in pool.map(prepare, chosen) if log]
        print("\n".join(failures) or f"environments ready: {', '.join(chosen)}", file=sys.stderr)
        return 1 if failures else 0
    if command != "run":
        sys.exit(f"unknown command {command!r}: prepare or run")
    failed = []
    for dist in chosen:
        others = ", ".join(peers(dist)) or "no other distribution"
        print(f"\n=== {dist}, installed alone (with {others} from this checkout)", flush=True)
        # The repository's pytest configuration (pyproject.toml), on this distribution's tests only.
        code = subprocess.run(
            [
                str(python(dist)),
                "-m",
                "pytest",
                "-c",
                str(ROOT / "pyproject.toml"),
                str(PLUGINS / dist / "tests"),
            ],
            cwd=ROOT,
        ).returncode
        if code != 0:
            failed.append(dist)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
