"""The TLS seam: stelar-core serves and opens TLS with contexts a plugin provides.

The core holds no certificates and reads no key files. A plugin (``stelar-tls``) registers a
:class:`TLSProvider` from ``stelar_register_tls``:

* its ``server`` factory is called once per server with the plugin's options (a
  ``ProviderContext``) and returns a :class:`ServerTLS`, or ``None`` when those options ask for
  no TLS. Socket transports (ws, tcp, the health port) ask it for the context of **each**
  connection they accept, so a provider that reloads its certificate serves the new one from
  the next connection on;
* its ``client`` is called by connectors for ``wss://`` and ``tcps://`` URLs with the client's
  ``ConnectOptions`` (``ca_file``, ``reject_unauthorized``, ``tls``) and returns the context to
  connect with.

Without a provider installed, asking for TLS fails naming the distribution to install.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

import attrs

from stelar_core.errors import ConfigError
from stelar_core.plugins import hints
from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.registry import ProviderRegistry

if TYPE_CHECKING:
    from stelar_core.plugins.manager import StelarPluginManager
    from stelar_core.providers import Factory, ProviderContext
    from stelar_core.transports.base import ConnectOptions

# The URL schemes of stelar's own transports that run over TLS.
SECURE_SCHEMES = frozenset({"wss", "tcps"})


@runtime_checkable
class ServerTLS(Protocol):
    """A server's TLS, as its socket transports see it."""

    def context(self, transport: str, alpn: Sequence[str]) -> ssl.SSLContext | None:
        """The context a connection that ``transport`` accepts now handshakes with (the newest
        certificate; ``alpn`` the protocols this transport speaks), or ``None`` when this
        transport serves plaintext. Called for every connection: keep it cheap."""


@attrs.frozen(slots=True)
class TLSProvider:
    """What a TLS plugin registers: ``register(name, TLSProvider(server=..., client=...))``."""

    server: Factory[ProviderContext, ServerTLS | None]
    client: Callable[[ConnectOptions], ssl.SSLContext]

    def __call__(self, context: ProviderContext) -> ServerTLS | None:
        return self.server(context)


def not_installed(what: str) -> ConfigError:
    return ConfigError(
        f"{what} needs TLS, which no installed plugin provides"
        + hints.install_hint(" or ".join(hints.for_kind("TLS provider")))
    )


def is_secure(url: str) -> bool:
    return urlsplit(url).scheme in SECURE_SCHEMES


def client_context(
    url: str, options: ConnectOptions, pm: StelarPluginManager | None = None
) -> ssl.SSLContext:
    """The context a connector opens ``url`` (a ``wss://`` or ``tcps://`` URL) with: the one
    in ``options.ssl_context`` if a client made it already, else the TLS provider's."""
    if options.ssl_context is not None:
        return options.ssl_context
    return client_provider(url, pm).client(options)


def client_provider(url: str, pm: StelarPluginManager | None = None) -> TLSProvider:
    """The installed TLS provider (the first by name when several are installed)."""
    registry: ProviderRegistry[TLSProvider] = ProviderRegistry(pm or build_plugin_manager(), "TLS provider")
    for provider in registry.providers():
        if isinstance(provider.factory, TLSProvider):
            return provider.factory
    raise not_installed(f"URL {url!r}")


# What OpenSSL reports when the other end does not speak TLS at all.
NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"}
)


def handshake_error(url: str, error: OSError) -> OSError:
    """What a client raises for a failed TLS handshake (an ``ssl.SSLError``, or the server
    dropping the connection): a certificate that does not verify as it is
    (``ssl.SSLCertVerificationError`` names the cause), anything else as a ``ConnectionError``
    saying what most likely happened."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return error
    reason = getattr(error, "reason", None)
    if reason in NOT_TLS_REASONS or not isinstance(error, ssl.SSLError):
        return ConnectionError(
            f"TLS handshake with {url} failed ({reason or type(error).__name__}): the server does not "
            "speak TLS on that port; use ws:// or tcp:// for a plaintext port"
        )
    return ConnectionError(f"TLS handshake with {url} failed: {error}")


def failure_category(error: BaseException) -> str:
    """How a server-side handshake failed, for the stats and the hook: ``client_certificate``
    (none sent where one is required, or one that does not verify) or ``error``."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return "client_certificate"
    if isinstance(error, ssl.SSLError) and error.reason in _CLIENT_CERTIFICATE_REASONS:
        return "client_certificate"
    return "error"


_CLIENT_CERTIFICATE_REASONS = frozenset(
    {"PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_VERIFY_FAILED", "NO_CERTIFICATE_RETURNED"}
)
