"""The ``[stelar.tls]`` options and the TLS provider named ``tls``: the server's certificate
(from files it watches, from PEM contents, or made for development) and the clients' contexts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from stelar_core.plugin_api import (
    ConfigError,
    OptionDeclarations,
    ProviderContext,
    Register,
    TLSProvider,
    fail,
    hookimpl,
)
from stelar_tls.contexts import CLIENT_CERT_MODES, VERSIONS, client_context
from stelar_tls.selfsigned import default_folder, development_certificate
from stelar_tls.store import CertificateStore, Settings

log = logging.getLogger("stelar.tls")


def _material(option: str, value: Any) -> str | bytes | None:
    if value is None or (isinstance(value, str | bytes) and value):
        return value
    raise fail(option, value, "expected a path or PEM contents")


def _choice(choices: dict[str, Any]) -> Any:
    def check(option: str, value: Any) -> str:
        if value not in choices:
            raise fail(option, value, f"expected one of {', '.join(map(repr, choices))}")
        return str(value)

    return check


def _interval(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise fail(option, value, "expected seconds >= 0 (0: do not watch the files)")
    return float(value)


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add(
        "cert",
        type=str,
        check=_material,
        help="certificate chain (PEM): a path, watched for renewals, or the PEM contents",
    )
    options.add(
        "key",
        type=str,
        check=_material,
        secret=True,
        help="its private key (PEM): a path or the contents; None: the key is in the cert file",
    )
    options.add("password", type=str, secret=True, help="the password of an encrypted key")
    options.add(
        "ca_file",
        type=str,
        check=_material,
        help="CA certificates (PEM; path or contents) that client certificates must chain to",
    )
    options.add(
        "client_cert",
        default="none",
        type=str,
        check=_choice(CLIENT_CERT_MODES),
        help="client certificates (mTLS): none, optional (verified when sent) or required",
    )
    options.add(
        "min_version", default="1.2", type=str, check=_choice(VERSIONS), help="oldest TLS version accepted"
    )
    options.add(
        "self_signed",
        default=False,
        type=bool,
        help="serve a development certificate for localhost (its CA file is printed); not for production",
    )
    options.add(
        "self_signed_dir",
        type=str,
        help="where the development CA is kept (default: ~/.cache/stelar/tls)",
    )
    options.add(
        "transports",
        type=list,
        help="the transports served over TLS (default: every socket transport: ws, tcp, the health port)",
    )
    options.add(
        "watch_interval",
        default=1.0,
        type=float,
        check=_interval,
        help="seconds between looks at the certificate files for a renewal (0: never)",
    )


def _server_tls(context: ProviderContext) -> CertificateStore | None:
    options = context.options
    if options.self_signed:
        if options.cert is not None:
            raise ConfigError("options 'tls.cert' and 'tls.self_signed' exclude each other: give one")
        cert, key, ca_file = development_certificate(
            Path(options.self_signed_dir) if options.self_signed_dir else default_folder()
        )
        log.warning(
            "TLS: serving a development certificate for localhost, 127.0.0.1 and ::1; "
            "clients trust it with ca_file=%s",
            ca_file,
        )
        settings = Settings.from_options(options, cert=cert, key=key)
    elif options.cert is None and options.key is None:
        configured = [name for name in ("password", "ca_file") if options[name] is not None]
        configured += ["client_cert"] if options.client_cert != "none" else []
        if configured:
            raise ConfigError(
                f"option 'tls.{configured[0]}' is set but TLS is off: set tls.cert and tls.key "
                "(or tls.self_signed)"
            )
        return None
    else:
        settings = Settings.from_options(options)
    # One store per server, started and stopped with it (the watch on the files).
    return context.resources.get("tls", lambda: CertificateStore(settings))


@hookimpl
def stelar_register_tls(register: Register[TLSProvider]) -> None:
    register("tls", TLSProvider(server=_server_tls, client=client_context))
