"""Which stelar modules import which: the figures behind docs/architecture.md's layer drawing.

    python3 scripts/import_graph.py [ROOT]        # ROOT: a checkout, this one by default

Prints, as markdown: how many ``stelar_core`` modules each distribution under ``plugins/``
imports (and which), the imports between the core's folders (the layers), and every import that
points up a layer. Statically read (``ast``), so it also runs against an earlier checkout without
installing it; imports under ``if TYPE_CHECKING:`` count too, because they are the coupling a
reader sees.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

# The core's layers, bottom first (docs/architecture.md): a module may import its own layer and
# those below it. Folders not listed are layer 0 (values shared by everything).
LAYERS = {
    "protocol": 1,
    "errors": 0,
    "values": 0,
    "clock": 0,
    "validation": 0,
    "config": 1,
    "payloads": 1,
    "schemas": 1,
    "providers": 2,
    "plugins": 2,
    "tls": 2,
    "tracing": 2,
    "transports": 2,
    "builtins": 3,
    "hub": 3,
    "client": 4,
    "server": 4,
    "asyncapi": 4,
    "testing": 5,
    "loadgen": 5,
    "commands": 6,
    "cli": 6,
    "plugin_api": 7,
}


def imported_modules(path: Path) -> set[str]:
    """The ``stelar*`` modules a file imports (``from a.b import c`` counts as ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("stelar")}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def folder(module: str) -> str:
    """``stelar_core.hub.session`` -> ``hub``; ``stelar_core`` -> ``(package)``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(package)"


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    print("## What each distribution imports from stelar_core\n")
    print("| distribution | stelar_core modules | which |\n|---|---:|---|")
    all_plugin_targets: Counter[str] = Counter()
    for dist in sorted((root / "plugins").glob("stelar-*")):
        targets: Counter[str] = Counter()
        for path in dist.rglob("*.py"):
            if "tests" in path.relative_to(dist).parts:
                continue
            targets.update(m for m in imported_modules(path) if m.split(".")[0] == "stelar_core")
        all_plugin_targets.update(targets)
        which = ", ".join(f"`{m}` ({n})" for m, n in sorted(targets.items()))
        print(f"| {dist.name} | {len(targets)} | {which} |")
    print(f"\nDistinct stelar_core modules imported by plugins: {len(all_plugin_targets)}\n")

    edges: Counter[tuple[str, str]] = Counter()
    upward: list[str] = []
    for path in sorted((root / "stelar_core").rglob("*.py")):
        source = module_name(root, path)
        for target in imported_modules(path):
            if target.split(".")[0] != "stelar_core":
                continue
            a, b = folder(source), folder(target)
            if a == b:
                continue
            edges[(a, b)] += 1
            # The package's __init__ is the public facade, above every layer.
            if a != "(package)" and b != "(package)" and LAYERS.get(b, 0) > LAYERS.get(a, 0):
                upward.append(f"`{source}` -> `{target}`")
    print("## Imports between the core's folders (files importing)\n")
    print("| from | to | files |\n|---|---|---:|")
    for (a, b), n in sorted(edges.items()):
        print(f"| {a} | {b} | {n} |")
    print(f"\n## Imports pointing up a layer: {len(upward)}\n")
    for line in upward:
        print(f"- {line}")


if __name__ == "__main__":
    main()
