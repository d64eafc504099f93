"""The declared plugin API holds: stelar's six distributions use ``stelar_core.plugin_api`` and
nothing else of the core, and only what other distributions export on purpose.

Read statically (``ast``), so every import counts, those under ``if TYPE_CHECKING:`` too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import stelar_core.plugin_api as plugin_api

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = sorted(path for path in (ROOT / "plugins").iterdir() if path.name.startswith("stelar-"))
PACKAGES = {dist.name.replace("-", "_") for dist in DISTRIBUTIONS}
# What a distribution's tests may use of the core besides the plugin API: the public facade and
# the test kit (TestClient, fixtures, the conformance suites, process helpers); of other distributions,
# their exports and their test kits (``stelar_ws.testing``).
TEST_ALLOWED = {"stelar_core", "stelar_core.plugin_api", "stelar_core.testing"}


def allowed_in_tests(module: str) -> bool:
    return module in TEST_ALLOWED or module.startswith("stelar_core.testing.")


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every absolute import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
    return found


def violations(dist: Path, root: Path = ROOT) -> list[str]:
    own = dist.name.replace("-", "_")
    wrong = []
    for path in sorted(dist.rglob("*.py")):
        where = path.relative_to(root)
        # A distribution's test kit (``<package>/testing.py``) is test code too.
        is_test = "tests" in path.relative_to(dist).parts or path.name == "testing.py"
        for line, module, names in imports(path):
            top = module.split(".")[0]
            if top == "stelar_core":
                if not (allowed_in_tests(module) if is_test else module == "stelar_core.plugin_api"):
                    wrong.append(f"{where}:{line} imports {module} (use stelar_core.plugin_api)")
            elif top in PACKAGES and top != own:
                if is_test and module == f"{top}.testing":
                    continue  # another distribution's test kit (a test peer)
                exported = set(getattr(importlib.import_module(top), "__all__", ()))
                if module != top:
                    wrong.append(f"{where}:{line} imports {module}, a module of another distribution")
                wrong.extend(
                    f"{where}:{line} imports {name} from {top}, which does not export it"
                    for name in names
                    if name.startswith("_") or name not in exported
                )
    return wrong


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda path: path.name)
def test_a_distribution_uses_only_the_plugin_api_and_what_others_export(dist):
    assert violations(dist) == []


def test_the_check_catches_an_internal_import_and_an_unexported_name(tmp_path):
    dist = tmp_path / "stelar-fake"
    (dist / "stelar_fake").mkdir(parents=True)
    (dist / "stelar_fake" / "bad.py").write_text(
        "from stelar_core.hub.session import Session\n"
        "from stelar_ws.http import origin_refusal\n"
        "from stelar_ws import _private, client_address\n"
        "from stelar_core.plugin_api import hookimpl\n"
    )
    assert violations(dist, tmp_path) == [
        "stelar-fake/stelar_fake/bad.py:1 imports stelar_core.hub.session (use stelar_core.plugin_api)",
        "stelar-fake/stelar_fake/bad.py:2 imports stelar_ws.http, a module of another distribution",
        "stelar-fake/stelar_fake/bad.py:3 imports _private from stelar_ws, which does not export it",
    ]


def test_every_name_of_the_plugin_api_is_importable_and_listed():
    for name in plugin_api.__all__:
        assert getattr(plugin_api, name) is not None
    public = {name for name in vars(plugin_api) if not name.startswith("_")}
    assert public == set(plugin_api.__all__)


def test_docs_plugins_md_describes_every_name_of_the_plugin_api():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    missing = [name for name in plugin_api.__all__ if f"`{name}`" not in text]
    assert missing == []
