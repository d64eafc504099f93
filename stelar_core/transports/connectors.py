"""Finding the client side of a transport from a URL's scheme (``tcp://``, ``ws://``, ...)."""

from __future__ import annotations

from urllib.parse import urlsplit

from stelar_core.errors import ConfigError
from stelar_core.plugins.manager import StelarPluginManager, build_plugin_manager
from stelar_core.plugins.registry import KNOWN_DISTRIBUTIONS, ProviderRegistry
from stelar_core.transports.base import Connector

# Schemes of the project's own transports, so a missing one names what to install.
KNOWN_SCHEMES = {"tcp": "tcp", "tcps": "tcp", "ws": "ws", "wss": "ws", "memory": "memory"}


def find_connector(url: str, pm: StelarPluginManager | None = None) -> Connector:
    """The connector of the installed transport whose factory lists the URL's scheme in its
    ``schemes`` attribute."""
    scheme = urlsplit(url).scheme
    if not scheme:
        raise ConfigError(f"URL {url!r} has no scheme (tcp://, tcps://, ws://, wss://, memory://)")
    registry = ProviderRegistry(pm or build_plugin_manager(), "transport")
    for provider in registry.providers():
        if scheme in getattr(provider.factory, "schemes", ()):
            connector: Connector = getattr(provider.factory, "connector")  # noqa: B009 (typed as a plain callable)
            return connector
    message = f"no installed transport handles {scheme}:// URLs"
    distribution = KNOWN_DISTRIBUTIONS.get(("transport", KNOWN_SCHEMES.get(scheme, "")))
    if distribution:
        message += f"; install it with: pip install {distribution}"
    raise ConfigError(message)
