"""The distributions the stelar project publishes, so that asking for something that is not
installed says what to install. Only distributions that exist are listed."""

from __future__ import annotations

# (provider kind, name) -> distribution
PROVIDERS: dict[tuple[str, str], str] = {
    ("transport", "ws"): "stelar-ws",
    ("transport", "tcp"): "stelar-tcp",
    ("transport", "http"): "stelar-health",
    ("broker", "redis"): "stelar-redis",
    ("rate limiter", "redis"): "stelar-redis",
    ("IP tracker", "redis"): "stelar-redis",
    ("TLS provider", "tls"): "stelar-tls",
}

# option section, or a flat short form, -> distribution
OPTIONS: dict[str, str] = {
    "ws": "stelar-ws",
    "tcp": "stelar-tcp",
    "health": "stelar-health",
    "port": "stelar-ws",
    "path": "stelar-ws",
    "allowed_origins": "stelar-ws",
    "allow_missing_origin": "stelar-ws",
    "compression": "stelar-ws",
    "trusted_proxies": "stelar-ws",
    "tcp_port": "stelar-tcp",
    "health_endpoint": "stelar-health",
    "health_port": "stelar-health",
    "custom_health_handler": "stelar-health",
    "redis": "stelar-redis",
    "tls": "stelar-tls",
}

# URL scheme -> transport name
SCHEMES: dict[str, str] = {"tcp": "tcp", "tcps": "tcp", "ws": "ws", "wss": "ws"}


def install_hint(distribution: str | None) -> str:
    return f". Install it with: pip install {distribution}" if distribution else ""
