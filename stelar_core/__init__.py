"""stelar: real-time messaging for asyncio, over WebSocket and binary TCP, built from plugins.

The public API::

    from stelar_core import StelarServer, RateLimit, hookimpl

``COMPILED``: whether the hot path runs compiled by mypyc (stelar_core.compiled).
"""

# First, so that STELAR_NO_EXTENSIONS=1 is heard before anything imports an accelerated module.
from stelar_core import compiled as _compiled
from stelar_core.client import ClientOptions, ClientState, StelarClient
from stelar_core.config import RateLimit, ServerConfig
from stelar_core.errors import (
    AckError,
    AckTimeout,
    ConfigError,
    ConnectionRefused,
    NotConnected,
    PluginError,
    ProtocolError,
    RemoteError,
    StelarError,
)
from stelar_core.hub import ClientInfo, Context, Stats
from stelar_core.plugins.markers import hookimpl
from stelar_core.protocol import DisconnectCode, ErrorCode
from stelar_core.server import StelarServer

__version__ = "0.1.0"
COMPILED = bool(_compiled.compiled_modules())

__all__ = [
    "COMPILED",
    "AckError",
    "AckTimeout",
    "ClientInfo",
    "ClientOptions",
    "ClientState",
    "ConfigError",
    "ConnectionRefused",
    "Context",
    "DisconnectCode",
    "ErrorCode",
    "NotConnected",
    "PluginError",
    "ProtocolError",
    "RateLimit",
    "RemoteError",
    "ServerConfig",
    "Stats",
    "StelarClient",
    "StelarError",
    "StelarServer",
    "__version__",
    "hookimpl",
]
