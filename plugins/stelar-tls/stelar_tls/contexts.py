"""``ssl.SSLContext`` for both ends, from certificate material and the options.

Safe defaults: TLS 1.2 or newer (``min_version="1.3"`` for 1.3 only), the ``ssl`` module's
default ciphers, no compression, no renegotiation; ALPN names the protocol each transport speaks.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from stelar_core.plugin_api import ConfigError, ConnectOptions, fail, unknown
from stelar_tls.material import CertificateInfo, MaterialError, inspect, load_authorities, load_chain, read

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
CLIENT_CERT_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


@attrs.frozen(slots=True)
class Material:
    """Read certificate material, checked: what a context is built from."""

    chain: bytes
    key: bytes | None
    password: str | None
    authorities: bytes | None
    info: CertificateInfo

    @classmethod
    def read(
        cls,
        cert: str | bytes,
        key: str | bytes | None,
        password: str | None,
        ca_file: str | bytes | None,
        now: datetime.datetime | None = None,
    ) -> Material:
        """Read and check; raises :class:`MaterialError` saying what is wrong."""
        try:
            chain = read(cert)
            key_bytes = read(key) if key is not None else None
            authorities = read(ca_file) if ca_file is not None else None
        except OSError as exc:
            raise MaterialError(f"cannot read {exc.filename}: {exc.strerror}") from None
        info = inspect(chain, now or datetime.datetime.now(datetime.UTC))
        material = cls(chain, key_bytes, password, authorities, info)
        # The key matches, the password opens it, the CA file loads.
        server_context(material, "none" if authorities is None else "optional", "1.2", ())
        return material


def server_context(
    material: Material, client_cert: str, min_version: str, alpn: Sequence[str]
) -> ssl.SSLContext:
    # Not create_default_context(CLIENT_AUTH): that trusts the system's CAs for client
    # certificates, where only ca_file should be trusted.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = VERSIONS[min_version]
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    load_chain(context, material.chain, material.key, material.password)
    if client_cert != "none":
        assert material.authorities is not None, "checked with the options"
        load_authorities(context, material.authorities)
        context.verify_mode = CLIENT_CERT_MODES[client_cert]
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


# --------------------------------------------------------------------------- client

CLIENT_TLS_KEYS = ("cert", "key", "password", "min_version")


def client_context(options: ConnectOptions) -> ssl.SSLContext:
    """A client's context: the system's CAs (or ``ca_file``, a path or PEM contents), the
    certificate verified against the host name unless ``reject_unauthorized=False``; a client
    certificate from ``tls={"cert", "key", "password"}`` for servers that require one."""
    settings = _client_settings(options.tls)
    context = ssl.create_default_context()
    context.minimum_version = VERSIONS[settings.get("min_version", "1.2")]
    try:
        if options.ca_file is not None:
            load_authorities(context, read(options.ca_file))
        if not options.reject_unauthorized:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if "cert" in settings:
            key = settings.get("key")
            load_chain(context, read(settings["cert"]), read(key) if key else None, settings.get("password"))
    except OSError as exc:
        raise ConfigError(f"client TLS: cannot read {exc.filename}: {exc.strerror}") from None
    except MaterialError as exc:
        raise ConfigError(f"client TLS: {exc}") from None
    return context


def _client_settings(tls: Mapping[str, Any]) -> Mapping[str, Any]:
    for name in tls:
        if name not in CLIENT_TLS_KEYS:
            raise unknown("client option tls key", name, CLIENT_TLS_KEYS)
    for name in ("cert", "key", "password"):
        if tls.get(name) is not None and not isinstance(tls[name], str | bytes):
            raise fail(f"tls[{name!r}]", tls[name], "expected a path or PEM contents")
    if "key" in tls and "cert" not in tls:
        raise fail("tls['key']", tls["key"], "needs tls['cert'] (the client certificate)")
    if tls.get("min_version", "1.2") not in VERSIONS:
        raise fail("tls['min_version']", tls["min_version"], f"expected one of {', '.join(VERSIONS)}")
    return {name: value for name, value in tls.items() if value is not None}
