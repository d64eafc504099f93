"""Name -> factory tables filled by the provider hooks, and selection by configured name.

Each plugin's provider hook is called through pluggy on its own (a subset hook caller), so every
name is attributed to the plugin that registered it — its factory will receive that plugin's
options — and ``STELAR_TRACE_PLUGINS`` sees the registration like any other hook call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from stelar_core.errors import ConfigError, PluginError
from stelar_core.plugins import hints
from stelar_core.plugins.manager import StelarPluginManager
from stelar_core.plugins.options import section_name

PROVIDER_HOOKS = {
    "transport": "stelar_register_transports",
    "rate limiter": "stelar_register_rate_limiters",
    "IP tracker": "stelar_register_ip_trackers",
    "client ID generator": "stelar_register_id_generators",
    "broker": "stelar_register_brokers",
    "TLS provider": "stelar_register_tls",
}


@attrs.frozen(slots=True)
class Provider:
    name: str
    factory: Any
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


class ProviderRegistry:
    """All providers of one kind."""

    def __init__(self, pm: StelarPluginManager, kind: str) -> None:
        self.kind = kind
        self._pm = pm
        self._providers: dict[str, Provider] = {}
        call_each_plugin(pm, PROVIDER_HOOKS[kind], lambda plugin: {"register": self._registrar(plugin)})

    def _registrar(self, plugin_name: str) -> Callable[[str, Any], None]:
        def register(name: str, factory: Any) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin_name!r} registered a {self.kind} with bad name {name!r}")
            if not callable(factory):
                raise PluginError(f"plugin {plugin_name!r}: {self.kind} {name!r} factory is not callable")
            if name not in self._providers:
                self._providers[name] = Provider(name, factory, plugin_name)

        return register

    def names(self) -> list[str]:
        return sorted(self._providers)

    def providers(self) -> list[Provider]:
        return [self._providers[name] for name in self.names()]

    def get(self, name: str, option: str) -> Provider:
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        installed = (
            ", ".join(
                f"{p.name} ({self._pm.distributions.get(p.plugin, (p.plugin,))[0]})" for p in self.providers()
            )
            or "none"
        )
        message = f"option {option!r}: no {self.kind} named {name!r} is installed; installed: {installed}"
        raise ConfigError(message + hints.install_hint(hints.for_provider(self.kind, name)))


def all_registries(pm: StelarPluginManager) -> dict[str, ProviderRegistry]:
    return {kind: ProviderRegistry(pm, kind) for kind in PROVIDER_HOOKS}
