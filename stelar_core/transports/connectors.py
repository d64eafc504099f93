"""Finding the client side of a transport from a URL's scheme (``tcp://``, ``ws://``, ...)."""

from __future__ import annotations

from urllib.parse import urlsplit

from stelar_core.errors import ConfigError
from stelar_core.plugins import hints
from stelar_core.plugins.manager import StelarPluginManager, build_plugin_manager
from stelar_core.plugins.registry import ProviderRegistry
from stelar_core.providers import TransportProvider
from stelar_core.transports.base import Connector


def find_connector(url: str, pm: StelarPluginManager | None = None) -> Connector:
    """The connector of the installed transport that lists the URL's scheme."""
    scheme = urlsplit(url).scheme
    if not scheme:
        raise ConfigError(f"URL {url!r} has no scheme (tcp://, tcps://, ws://, wss://, memory://)")
    registry: ProviderRegistry[TransportProvider] = ProviderRegistry(
        pm or build_plugin_manager(), "transport"
    )
    for provider in registry.providers():
        transport = provider.factory
        if isinstance(transport, TransportProvider) and scheme in transport.schemes and transport.connector:
            return transport.connector
    raise ConfigError(
        f"no installed transport handles {scheme}:// URLs" + hints.install_hint(hints.for_scheme(scheme))
    )
