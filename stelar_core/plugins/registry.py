"""Name -> factory tables filled by the provider hooks, and selection by configured name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from stelar_core.errors import ConfigError, PluginError
from stelar_core.plugins.manager import StelarPluginManager

# Names whose providers the stelar project publishes, so a missing one says what to install.
KNOWN_DISTRIBUTIONS: dict[tuple[str, str], str] = {
    ("transport", "ws"): "stelar-ws",
    ("transport", "tcp"): "stelar-tcp",
    ("transport", "http"): "stelar-health",
    ("rate limiter", "redis"): "stelar-redis",
    ("broker", "redis"): "stelar-redis",
}

PROVIDER_HOOKS = {
    "transport": "stelar_register_transports",
    "rate limiter": "stelar_register_rate_limiters",
    "IP tracker": "stelar_register_ip_trackers",
    "client ID generator": "stelar_register_id_generators",
    "broker": "stelar_register_brokers",
}


@attrs.frozen(slots=True)
class Provider:
    name: str
    factory: Callable[..., Any]
    plugin: str


class ProviderRegistry:
    """All providers of one kind, filled by calling each plugin's implementation separately so
    that every name is attributed to the plugin that registered it."""

    def __init__(self, pm: StelarPluginManager, kind: str) -> None:
        self.kind = kind
        self._pm = pm
        self._providers: dict[str, Provider] = {}
        caller = getattr(pm.hook, PROVIDER_HOOKS[kind])
        # pluggy calls the last registered first; register in that order so a user's plugin
        # can take a name that a (trylast) built-in also offers.
        for impl in reversed(caller.get_hookimpls()):
            plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
            impl.function(register=self._registrar(plugin_name))

    def _registrar(self, plugin_name: str) -> Callable[[str, Callable[..., Any]], None]:
        def register(name: str, factory: Callable[..., Any]) -> None:
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
        distribution = KNOWN_DISTRIBUTIONS.get((self.kind, name))
        if distribution is not None:
            message += f". Install it with: pip install {distribution}"
        raise ConfigError(message)


def all_registries(pm: StelarPluginManager) -> dict[str, ProviderRegistry]:
    return {kind: ProviderRegistry(pm, kind) for kind in PROVIDER_HOOKS}
