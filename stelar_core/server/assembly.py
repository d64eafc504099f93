"""Building a server's parts from its options, in order: the core's options, the plugin
manager, the plugins' option sections, then the providers each configuration names.

Every provider, whether selected by name or passed as an object, is checked against its
protocol here, so a provider that does not fit fails when the server is built rather than on
every connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from stelar_core.config import RateLimit, ServerConfig
from stelar_core.errors import ConfigError, PluginError
from stelar_core.hub.ratelimit import LimiterFactory
from stelar_core.plugins import hints
from stelar_core.plugins.manager import StelarPluginManager, build_plugin_manager
from stelar_core.plugins.options import EMPTY, OptionTable, option_table
from stelar_core.plugins.registry import Provider, ProviderRegistry, all_registries, call_each_plugin
from stelar_core.providers import (
    Broker,
    IdGenerator,
    IPTracker,
    LimiterContext,
    ProviderContext,
    RateLimiter,
    Resources,
    TransportContext,
    TransportProvider,
    check_provider,
)
from stelar_core.tls import ServerTLS
from stelar_core.tracing import Tracer
from stelar_core.transports.base import HubPort, Transport
from stelar_core.validation import unknown


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The core's own options, and the rest (plugin sections and short forms)."""
    core_names = set(ServerConfig.option_names())
    core = {name: value for name, value in options.items() if name in core_names}
    rest = {name: value for name, value in options.items() if name not in core_names}
    return core, rest


def collect_options(pm: StelarPluginManager) -> OptionTable:
    """Every plugin's declarations. A section or short form may not take a core option's name
    (the core's would always win, and the plugin's option could never be given)."""
    table = option_table(
        lambda declarations_for: call_each_plugin(
            pm, "stelar_add_options", lambda plugin: {"options": declarations_for(plugin)}
        )
    )
    clashes = sorted(set(ServerConfig.option_names()) & {*table.sections, *table.shorts})
    if clashes:
        raise PluginError(f"a plugin's option section or short form is named {clashes[0]!r}, a core option")
    return table


def check_plugin_option_names(table: OptionTable, options: Mapping[str, Any]) -> None:
    """Every name is the core's, a plugin section or a short form; otherwise the error says
    which distribution to install, or which known name is closest."""
    for name in options:
        if name in ServerConfig.option_names() or table.knows(name):
            continue
        distribution = hints.for_option(name)
        if distribution is not None:
            raise ConfigError(
                f"option {name!r} belongs to a plugin that is not installed"
                + hints.install_hint(distribution)
            )
        known = [*ServerConfig.option_names(), *table.sections, *table.shorts]
        raise unknown("option", name, known)


class Assembly:
    """The configuration and providers of one server, before anything runs."""

    def __init__(
        self, config: ServerConfig | None, plugins: Iterable[object], options: Mapping[str, Any]
    ) -> None:
        core, rest = split_options(options)
        base = ServerConfig(**core) if config is None else attrs.evolve(config, **core)
        self.pm = build_plugin_manager(plugins=plugins, hooks=base.hooks, block=base.block_plugins)
        self.options = collect_options(self.pm)
        check_plugin_option_names(self.options, rest)
        # A config built by another server keeps its sections where this server has the plugin.
        current = {
            **self.options.defaults(),
            **{
                section: options
                for section, options in base.plugins.items()
                if section in self.options.sections
            },
        }
        sections = self.options.apply(current, self.options.given(rest))
        self.config = attrs.evolve(base, plugins=sections)
        self.providers: dict[str, ProviderRegistry[Any]] = all_registries(self.pm, base.plugin_choice)
        self.resources = Resources()

    # ------------------------------------------------------------------ providers

    def context(self, provider: Provider[Any]) -> ProviderContext:
        return ProviderContext(
            self.config, self.config.plugins.get(provider.section, EMPTY), provider.section, self.resources
        )

    def _build(self, kind: str, option: str, provider: Provider[Any], context: Any) -> Any:
        try:
            return provider.factory(context)
        except TypeError as exc:
            raise PluginError(
                f"plugin {provider.plugin!r}: the {kind} factory {provider.name!r} failed: {exc} "
                f"(a factory is called as factory(context: {type(context).__name__}))"
            ) from exc

    def _named_or_object(self, kind: str, option: str, protocol: type) -> Any:
        value = getattr(self.config, option)
        if isinstance(value, str):
            provider = self.providers[kind].get(value, option)
            value = self._build(kind, option, provider, self.context(provider))
        check_provider(value, protocol, kind, option)
        return value

    def ip_tracker(self) -> IPTracker:
        tracker: IPTracker = self._named_or_object("IP tracker", "ip_tracker", IPTracker)
        return tracker

    def broker(self) -> Broker:
        broker: Broker = self._named_or_object("broker", "broker", Broker)
        return broker

    def id_generator(self) -> Callable[[], str]:
        generator: Callable[[], str] = self._named_or_object(
            "client ID generator", "id_generator", IdGenerator
        )
        return generator

    def limiter_factory(self) -> LimiterFactory:
        """Builds a limiter for one policy. A custom limiter object only answers for itself, so
        per-event and per-client limits then use the built-in token bucket."""
        chosen = self.config.rate_limiter
        name = chosen if isinstance(chosen, str) else "token-bucket"
        provider = self.providers["rate limiter"].get(name, "rate_limiter")
        base = self.context(provider)

        def build(limit: RateLimit, scope: str) -> RateLimiter:
            context = LimiterContext(
                base.config, base.options, base.section, base.resources, limit=limit, scope=scope
            )
            limiter = self._build("rate limiter", "rate_limiter", provider, context)
            check_provider(limiter, RateLimiter, "rate limiter", "rate_limiter")
            built: RateLimiter = limiter
            return built

        return build

    def global_limiter(self, build: LimiterFactory, config: ServerConfig) -> RateLimiter | None:
        if not isinstance(config.rate_limiter, str):
            check_provider(config.rate_limiter, RateLimiter, "rate limiter", "rate_limiter")
            limiter: RateLimiter = config.rate_limiter
            return limiter
        return None if config.rate_limit is None else build(config.rate_limit, "global")

    # ------------------------------------------------------------------ transports

    def transport_providers(self) -> list[Provider[TransportProvider]]:
        """The transports to start: ``transports`` if given, else every installed one that its
        own options enable (``ws`` when ``port`` is set), in their declared order."""
        registry = self.providers["transport"]
        names = self.config.transports
        if names is not None:
            return [registry.get(name, "transports") for name in names]
        enabled = []
        for provider in registry.providers():
            transport = provider.factory
            options = self.config.plugins.get(provider.section, EMPTY)
            if isinstance(transport, TransportProvider) and transport.listens(options):
                enabled.append((transport.order, provider.name, provider))
        if not enabled:
            installed = ", ".join(registry.names()) or "none"
            raise ConfigError(
                "no transport configured: set the port of a network transport (port= for WebSocket, "
                f"pip install {hints.for_option('port')}; tcp_port= for TCP, pip install "
                f"{hints.for_option('tcp_port')}) or name them with transports=[...]; "
                f"installed transports: {installed}"
            )
        return [provider for _, _, provider in sorted(enabled)]

    def tls(self) -> ServerTLS | None:
        """The server's TLS: from the one TLS provider whose options ask for it, if any."""
        tls: ServerTLS | None = self._at_most_one("TLS provider", "tls", ServerTLS, "TLS providers")
        return tls

    def tracer(self) -> Tracer | None:
        """The server's tracer: from the one tracer plugin whose options ask for tracing, if any."""
        tracer: Tracer | None = self._at_most_one("tracer", "tracing", Tracer, "tracers")
        return tracer

    def _at_most_one(self, kind: str, option: str, protocol: type, plural: str) -> Any:
        """What the one provider of ``kind`` whose options ask for it builds (its factory returns
        None when they do not); None when none does, an error naming them when two do."""
        built: list[tuple[Provider[Any], Any]] = []
        for provider in self.providers[kind].providers():
            made = self._build(kind, option, provider, self.context(provider))
            if made is not None:
                check_provider(made, protocol, kind, provider.section)
                built.append((provider, made))
        if len(built) > 1:
            names = " and ".join(f"{provider.name} ({provider.section})" for provider, _ in built)
            raise ConfigError(f"two {plural} are configured, {names}: configure one")
        return built[0][1] if built else None

    def transports(self, hub: HubPort) -> list[Transport]:
        built = []
        tls = self.tls()
        for provider in self.transport_providers():
            base = self.context(provider)
            context = TransportContext(
                base.config, base.options, base.section, base.resources, hub=hub, tls=tls
            )
            transport = self._build("transport", "transports", provider, context)
            check_provider(transport, Transport, "transport", "transports")
            built.append(transport)
        return built
