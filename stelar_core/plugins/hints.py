"""Which distribution to install for something asked for that no installed plugin provides.

The knowledge is each distribution's own: it declares what it provides in its
``pyproject.toml`` (``[tool.stelar.provides]``), and ``scripts/install_hints.py`` gathers those
tables into ``install_hints.json`` beside this module (a distribution that is not installed
cannot be asked). Nothing here names a distribution by hand.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

# Provider kinds as the registries name them -> the key a distribution's table uses.
PROVIDER_KEYS = {
    "transport": "transport",
    "rate limiter": "rate_limiter",
    "IP tracker": "ip_tracker",
    "client ID generator": "id_generator",
    "broker": "broker",
    "TLS provider": "tls",
    "emitter": "emitter",
    "tracer": "tracer",
}


@functools.cache
def _tables() -> dict[str, dict[str, list[str]]]:
    text = resources.files(__package__).joinpath("install_hints.json").read_text(encoding="utf-8")
    tables: dict[str, dict[str, list[str]]] = json.loads(text)
    return tables


def _provider_of(key: str, value: str) -> str | None:
    return next((dist for dist, table in _tables().items() if value in table.get(key, ())), None)


def for_option(name: str) -> str | None:
    """The distribution whose section or short form ``name`` is."""
    return _provider_of("options", name)


def for_scheme(scheme: str) -> str | None:
    """The distribution whose transport opens ``scheme://`` URLs."""
    return _provider_of("schemes", scheme)


def for_provider(kind: str, name: str) -> str | None:
    """The distribution registering the ``kind`` provider ``name`` (``("broker", "redis")``)."""
    return _provider_of(PROVIDER_KEYS.get(kind, kind), name)


def install_hint(distribution: str | None) -> str:
    """``. Install it with: pip install <distribution>``, or nothing when none is known."""
    return f". Install it with: pip install {distribution}" if distribution else ""


def for_kind(kind: str) -> list[str]:
    """Every distribution registering some ``kind`` provider (``"TLS provider"``)."""
    key = PROVIDER_KEYS.get(kind, kind)
    return [dist for dist, table in _tables().items() if table.get(key)]
