"""Gather what each distribution under ``plugins/`` declares it provides into the core's hints.

    python3 scripts/install_hints.py          # rewrites stelar_core/plugins/install_hints.json

Each distribution says in its own ``pyproject.toml`` (``[tool.stelar.provides]``) which option
sections and short forms, URL schemes and provider names it brings. When it is not installed,
its code is not there to ask, so stelar-core carries this generated copy to name it in errors
("pip install stelar-ws"); ``tests/test_install_hints.py`` fails when the copy is stale.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "stelar_core" / "plugins" / "install_hints.json"


def gather(root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """distribution -> {"options": [...], "schemes": [...], "<provider kind>": [...]}."""
    hints = {}
    for pyproject in sorted(root.glob("plugins/*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        provides = data.get("tool", {}).get("stelar", {}).get("provides")
        if provides is None:
            sys.exit(f"{pyproject}: no [tool.stelar.provides] table")
        hints[data["project"]["name"]] = {key: sorted(values) for key, values in sorted(provides.items())}
    return hints


def render(hints: dict[str, dict[str, list[str]]]) -> str:
    return json.dumps(hints, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(gather()), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
