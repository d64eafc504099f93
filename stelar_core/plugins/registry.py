"""Name -> factory tables filled by the provider hooks, and selection by configured name.

Each plugin's provider hook is called through pluggy on its own (a subset hook caller), so every
name is attributed to the plugin that registered it — its factory will receive that plugin's
options — and ``STELAR_TRACE_PLUGINS`` sees the registration like any other hook call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from stelar_core.errors import ConfigError, PluginError
from stelar_core.plugins import hints
from stelar_core.plugins.manager import CORE_DISTRIBUTION, StelarPluginManager
from stelar_core.plugins.options import section_name

PROVIDER_HOOKS = {
    "transport": "stelar_register_transports",
    "rate limiter": "stelar_register_rate_limiters",
    "IP tracker": "stelar_register_ip_trackers",
    "client ID generator": "stelar_register_id_generators",
    "broker": "stelar_register_brokers",
    "TLS provider": "stelar_register_tls",
    "emitter": "stelar_register_emitters",
    "tracer": "stelar_register_tracers",
}

F = TypeVar("F")


@attrs.frozen(slots=True)
class Provider(Generic[F]):
    """One registration: ``factory`` under ``name``, by the plugin named ``plugin``."""

    name: str
    factory: F
    plugin: str

    @property
    def section(self) -> str:
        """The configuration section of the plugin that registered it."""
        return section_name(self.plugin)


def call_each_plugin(
    pm: StelarPluginManager, hook: str, make_kwargs: Callable[[str], dict[str, Any]]
) -> None:
    """Call ``hook`` once per implementing plugin, through pluggy, with arguments made for it.

    pluggy calls the last registered first; the same order here lets a user's plugin take a name
    that a (``trylast``) built-in also offers."""
    implementations = getattr(pm.hook, hook).get_hookimpls()
    for impl in reversed(implementations):
        others = [other.plugin for other in implementations if other.plugin is not impl.plugin]
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        pm.subset_hook_caller(hook, others)(**make_kwargs(plugin_name))


class ProviderRegistry(Generic[F]):
    """All providers of one kind.

    A name offered by a built-in (stelar-core's own) and by another plugin goes to the other
    plugin. A name offered by two plugins that are not built-ins is an error naming both, unless
    ``choices`` (the ``plugin_choice`` option, ``{"broker:redis": "my-redis"}``) picks one: which
    one would win must never depend on the order plugins happen to load in."""

    def __init__(self, pm: StelarPluginManager, kind: str, choices: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._pm = pm
        self._offers: dict[str, list[Provider[F]]] = {}
        call_each_plugin(pm, PROVIDER_HOOKS[kind], lambda plugin: {"register": self._registrar(plugin)})
        self._providers = {
            name: self._pick(name, offers, choices or {}) for name, offers in self._offers.items()
        }

    def _registrar(self, plugin_name: str) -> Callable[[str, F], None]:
        def register(name: str, factory: F) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin_name!r} registered a {self.kind} with bad name {name!r}")
            if not callable(factory):
                raise PluginError(f"plugin {plugin_name!r}: {self.kind} {name!r} factory is not callable")
            offers = self._offers.setdefault(name, [])
            if all(offer.plugin != plugin_name for offer in offers):
                offers.append(Provider(name, factory, plugin_name))

        return register

    def _distribution(self, plugin: str) -> str | None:
        return self._pm.distributions.get(plugin, (None,))[0]

    def _origin(self, plugin: str) -> str:
        return f"{plugin!r} ({self._distribution(plugin) or 'passed in code'})"

    def _pick(self, name: str, offers: list[Provider[F]], choices: Mapping[str, str]) -> Provider[F]:
        key = f"{hints.PROVIDER_KEYS[self.kind]}:{name}"
        offered_by = ", ".join(self._origin(o.plugin) for o in offers)
        chosen = choices.get(key)
        if chosen is not None:
            for offer in offers:
                if offer.plugin == chosen:
                    return offer
            raise ConfigError(
                f"option 'plugin_choice': {key!r} names plugin {chosen!r}, which does not register "
                f"that {self.kind}; it is registered by {offered_by}"
            )
        contenders = [o for o in offers if self._distribution(o.plugin) != CORE_DISTRIBUTION]
        if len(contenders) > 1:
            first, second = contenders[:2]
            raise PluginError(
                f"plugins {self._origin(first.plugin)} and {self._origin(second.plugin)} both register "
                f"the {self.kind} {name!r}; pick "
                f"one with plugin_choice={{{key!r}: {first.plugin!r}}}, or block one with block_plugins"
            )
        # pluggy's order: a plugin other than stelar-core's built-ins (registered trylast) first.
        return offers[0]

    def names(self) -> list[str]:
        return sorted(self._providers)

    def providers(self) -> list[Provider[F]]:
        return [self._providers[name] for name in self.names()]

    def get(self, name: str, option: str) -> Provider[F]:
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        installed = (
            ", ".join(f"{p.name} ({self._distribution(p.plugin) or p.plugin})" for p in self.providers())
            or "none"
        )
        message = f"option {option!r}: no {self.kind} named {name!r} is installed; installed: {installed}"
        raise ConfigError(message + hints.install_hint(hints.for_provider(self.kind, name)))


def all_registries(
    pm: StelarPluginManager, choices: Mapping[str, str] | None = None
) -> dict[str, ProviderRegistry[Any]]:
    return {kind: ProviderRegistry(pm, kind, choices) for kind in PROVIDER_HOOKS}
