"""Install hints come from what each distribution declares about itself ([tool.stelar.provides]
in its pyproject.toml), gathered into stelar-core by scripts/install_hints.py; nothing in the core
names a distribution by hand."""

import importlib.util
from pathlib import Path

import pytest

from stelar_core import ConfigError, StelarServer
from stelar_core.plugins import hints
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.registry import all_registries
from stelar_core.server.assembly import collect_options

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("install_hints", ROOT / "scripts" / "install_hints.py")
install_hints = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_hints)


def test_the_core_carries_exactly_what_the_distributions_declare():
    shipped = (ROOT / "stelar_core" / "plugins" / "install_hints.json").read_text()
    assert shipped == install_hints.render(install_hints.gather()), "run python3 scripts/install_hints.py"


def test_each_distribution_declares_what_it_really_provides():
    pm = build_plugin_manager()
    table = collect_options(pm)
    registries = all_registries(pm)
    gathered = install_hints.gather()
    declared_anywhere = {option for table_ in gathered.values() for option in table_["options"]}
    for distribution, declared in gathered.items():
        plugins = {name for name, (dist, _) in pm.distributions.items() if dist == distribution}
        sections = {section for section in table.sections if section in plugins}
        shorts = {short for short, specs in table.shorts.items() if any(s.section in plugins for s in specs)}
        # A short form two distributions claim (allowed_origins) is declared by one of them.
        assert set(declared["options"]) <= sections | shorts <= declared_anywhere, distribution
        assert sections <= set(declared["options"]), distribution
        for kind, key in hints.PROVIDER_KEYS.items():
            names = {p.name for p in registries[kind].providers() if p.plugin in plugins}
            assert set(declared.get(key, [])) == names, (distribution, kind)


@pytest.mark.parametrize(
    ("blocked", "options", "distribution"),
    [
        ("ws", {"port": 0}, "stelar-ws"),
        ("tcp", {"tcp_port": 0}, "stelar-tcp"),
        ("health", {"health_port": 0}, "stelar-health"),
        ("redis", {"redis": {}}, "stelar-redis"),
        ("redis", {"broker": "redis"}, "stelar-redis"),
        ("tls", {"tls": {}}, "stelar-tls"),
    ],
)
def test_asking_for_what_is_not_installed_names_the_distribution(blocked, options, distribution):
    with pytest.raises(ConfigError, match=f"pip install {distribution}"):
        StelarServer(transports=["memory"], block_plugins=[blocked], **options)


def test_a_url_scheme_names_its_distribution():
    assert hints.for_scheme("wss") == "stelar-ws" and hints.for_scheme("tcps") == "stelar-tcp"
    assert hints.for_scheme("gopher") is None and hints.install_hint(None) == ""
