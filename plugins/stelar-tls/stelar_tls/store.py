"""The certificate a server serves, and the watch that swaps in a renewed one without a restart.

:class:`CertificateStore` is the server's ``ServerTLS``: socket transports ask it for the
context of each connection they accept. It is also one of the server's resources, started and
stopped with it: every ``watch_interval`` seconds it looks at the files (``os.stat`` through
symlinks, so certbot's ``live/`` links and Kubernetes' secret volumes are followed). When they
change it reads and checks the new material; good material is served from the next connection
on (connections already open keep theirs), bad material is refused with an error in the log and
the old certificate stays in use.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence

import attrs

from stelar_core.plugin_api import ConfigError, Options
from stelar_tls.contexts import Material, server_context
from stelar_tls.material import CertificateInfo, MaterialError, file_state

log = logging.getLogger("stelar.tls")


@attrs.frozen(slots=True)
class Settings:
    """The ``tls`` options a store serves by, checked together."""

    cert: str | bytes | None
    key: str | bytes | None
    password: str | None
    ca_file: str | bytes | None
    client_cert: str
    min_version: str
    transports: tuple[str, ...] | None
    watch_interval: float

    @classmethod
    def from_options(
        cls, options: Options, cert: str | bytes | None = None, key: str | bytes | None = None
    ) -> Settings:
        """``cert`` and ``key`` replace the options' (a development certificate's files)."""
        settings = cls(
            cert=cert or options.cert,
            key=key or options.key,
            password=options.password,
            ca_file=options.ca_file,
            client_cert=options.client_cert,
            min_version=options.min_version,
            transports=options.transports,
            watch_interval=options.watch_interval,
        )
        if settings.cert is None:
            raise ConfigError("option 'tls.key' needs tls.cert (the certificate chain it belongs to)")
        if settings.client_cert != "none" and settings.ca_file is None:
            raise ConfigError(
                f"option 'tls.client_cert' is {settings.client_cert!r}: client certificates are verified "
                "against tls.ca_file, which is not set"
            )
        return settings


class CertificateStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._state = self._file_states()
        try:
            self._material = self._read()
        except MaterialError as exc:
            raise ConfigError(f"option 'tls.cert': {exc}") from None
        self._contexts: dict[tuple[str, ...], ssl.SSLContext] = {}
        self._watch: asyncio.Task[None] | None = None
        log.info("TLS: serving %s", _describe(self._material.info))

    @property
    def certificate(self) -> CertificateInfo:
        """The certificate new connections get."""
        return self._material.info

    # ------------------------------------------------------------------ ServerTLS

    def context(self, transport: str, alpn: Sequence[str]) -> ssl.SSLContext | None:
        transports = self._settings.transports
        if transports is not None and transport not in transports:
            return None
        key = tuple(alpn)
        context = self._contexts.get(key)
        if context is None:  # first use since the certificate was (re)loaded
            settings = self._settings
            context = server_context(self._material, settings.client_cert, settings.min_version, key)
            self._contexts[key] = context
        return context

    # ------------------------------------------------------------------ renewal

    def check(self) -> bool:
        """Load the files again if they changed since the last look; whether new connections now
        get a new certificate."""
        state = self._file_states()
        if state == self._state:
            return False
        self._state = state
        try:
            material = self._read()
        except MaterialError as exc:
            log.error(
                "TLS: the changed certificate files are refused (%s); still serving %s",
                exc,
                _describe(self._material.info),
            )
            return False
        self._material, self._contexts = material, {}
        log.warning("TLS: certificate renewed; new connections get %s", _describe(material.info))
        return True

    async def start(self) -> None:
        interval = self._settings.watch_interval
        if interval > 0 and any(state is not None for state in self._state):
            self._watch = asyncio.get_running_loop().create_task(self._watching(interval))

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None

    async def _watching(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()

    def _read(self) -> Material:
        settings = self._settings
        assert settings.cert is not None
        return Material.read(settings.cert, settings.key, settings.password, settings.ca_file)

    def _file_states(self) -> tuple[tuple[int, int, int, int] | None, ...]:
        settings = self._settings
        return tuple(file_state(value) for value in (settings.cert, settings.key, settings.ca_file))


def _describe(info: CertificateInfo) -> str:
    until = f"{info.not_after:%Y-%m-%d %H:%M} UTC"
    return f"certificate serial {info.serial_hex} ({info.subject}), valid until {until}"
