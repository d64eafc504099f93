"""TLS contexts for both ends of socket transports, from stelar's options."""

from __future__ import annotations

import ssl

from stelar_core.config import TLSConfig
from stelar_core.errors import ConfigError


def server_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"option 'tls': cannot load certificate {tls.cert!r} and key: {exc}") from None
    return context


def client_context(*, reject_unauthorized: bool = True, ca_file: str | None = None) -> ssl.SSLContext:
    """Verification on by default (system CAs, or ``ca_file``); ``reject_unauthorized=False``
    accepts any certificate, as the seed's option of that name does."""
    context = ssl.create_default_context(cafile=ca_file)
    if not reject_unauthorized:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
