"""Server configuration: frozen attrs classes whose validators name the option, value and rule.

``ServerConfig(**options)`` is what ``StelarServer(**options)`` builds; ``ServerConfig.from_mapping``
reads the same options from a TOML table. Variants are made with ``attrs.evolve`` (which
``update_config`` uses), so every converter here is idempotent.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from stelar_core import logs
from stelar_core.errors import ConfigError

MiB = 1024 * 1024

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_MAX_CONNECTIONS_PER_IP = 50
DEFAULT_MAX_ROOMS = 10_000
DEFAULT_MAX_ROOMS_PER_CLIENT = 50
DEFAULT_MAX_PAYLOAD_SIZE = 10 * MiB
DEFAULT_MAX_FRAME_SIZE = 10 * MiB + 1024
DEFAULT_MAX_NAME_LENGTH = 256
DEFAULT_HEARTBEAT_INTERVAL = 30.0
DEFAULT_HEARTBEAT_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_ACK_TIMEOUT = 5.0
DEFAULT_MAX_PENDING_ACKS = 1024
DEFAULT_MAX_QUEUED_MESSAGES = 256
DEFAULT_MAX_BUFFERED_BYTES = 4 * MiB
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
DEFAULT_SLOW_CONSUMER_TIMEOUT = 5.0
DEFAULT_HEALTH_ENDPOINT = "/health"
LOG_LEVELS = tuple(logs.LEVELS)
_SECRET_WORDS = ("password", "secret", "token", "key", "credential")


def _fail(option: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"option {option!r} = {value!r} is invalid: {allowed}")


def _int_at_least(minimum: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _fail(attribute.name, value, f"expected an integer >= {minimum}")

    return check


def _seconds(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _fail(attribute.name, value, "expected a duration in seconds > 0")


def _port(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise _fail(attribute.name, value, "expected a port number 0..65535 (0 picks a free port) or None")


def _callable_or_none(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise _fail(attribute.name, value, "expected a function or None")


def _bool(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(attribute.name, value, "expected True or False")


def _text(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise _fail(attribute.name, value, "expected a non-empty string")


def _name_or_object(kind: str, required: tuple[str, ...]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, str):
            if not value:
                raise _fail(attribute.name, value, f"expected the name of a {kind} provider")
            return
        if not required and not callable(value):
            raise _fail(attribute.name, value, f"expected a {kind} name or a callable")
        missing = [m for m in required if not callable(getattr(value, m, None))]
        if missing:
            raise _fail(
                attribute.name,
                value,
                f"expected a {kind} name or an object with methods {', '.join(required)} "
                f"(missing {', '.join(missing)})",
            )

    return check


def _freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _tuple_or_none(value: Any) -> tuple[str, ...] | None:
    if value is None or isinstance(value, tuple):
        return value
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _health_endpoint(value: str | bool | None) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise _fail("health_endpoint", value, "expected a URL path starting with '/', or False")
    return value


def _networks(value: str | Iterable[str] | None) -> tuple[str, ...]:
    networks = _tuple_or_none(value) or ()
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            allowed = "expected IP addresses or networks (10.0.0.0/8)"
            raise _fail("trusted_proxies", network, allowed) from None
    return networks


def _block_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    return _tuple_or_none(value) or ()


@attrs.frozen(slots=True)
class RateLimit:
    """At most ``max_points`` messages per ``window`` seconds (a token bucket of that size)."""

    max_points: int = attrs.field(validator=_int_at_least(1))
    window: float = attrs.field(default=1.0, validator=_seconds)

    @classmethod
    def coerce(cls, value: RateLimit | Mapping[str, Any] | None, option: str) -> RateLimit | None:
        if value is None or isinstance(value, RateLimit):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"max_points", "window"}
            if unknown:
                raise _fail(
                    option,
                    dict(value),
                    f"unknown keys {sorted(unknown)}; allowed: max_points, window",
                )
            try:
                return cls(**value)
            except ConfigError as exc:
                raise ConfigError(f"in option {option!r}: {exc}") from None
            except TypeError:
                raise _fail(option, dict(value), "needs max_points (and optionally window)") from None
        raise _fail(option, value, "expected RateLimit(max_points, window), a mapping of those, or None")


def _rate_limit(value: Any) -> RateLimit | None:
    return RateLimit.coerce(value, "rate_limit")


def _event_rate_limits(value: Mapping[str, Any] | None) -> Mapping[str, RateLimit]:
    if value is not None and not isinstance(value, Mapping):
        raise _fail("event_rate_limits", value, "expected a mapping of event name to RateLimit")
    limits: dict[str, RateLimit] = {}
    for event, limit in (value or {}).items():
        coerced = RateLimit.coerce(limit, f"event_rate_limits[{event!r}]")
        if coerced is None:
            raise _fail(f"event_rate_limits[{event!r}]", limit, "expected a RateLimit")
        limits[event] = coerced
    return MappingProxyType(limits)


@attrs.frozen(slots=True)
class TLSConfig:
    """Paths of a PEM certificate chain and its private key (used by network transports)."""

    cert: str = attrs.field(converter=str)
    key: str = attrs.field(converter=str)


def _tls(value: Any) -> TLSConfig | None:
    if value is None or isinstance(value, TLSConfig):
        return value
    if isinstance(value, Mapping) and set(value) == {"cert", "key"}:
        return TLSConfig(**value)
    raise _fail("tls", value, "expected TLSConfig(cert=..., key=...) or a mapping with cert and key")


def _logger(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not logs.is_valid(value):
        raise _fail(
            attribute.name, value, f"expected one of {', '.join(LOG_LEVELS)}, False, a logging.Logger or None"
        )


def _path(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise _fail(attribute.name, value, "expected a URL path starting with '/'")


def _hooks(value: Mapping[str, Callable[..., Any]] | None) -> Mapping[str, Callable[..., Any]]:
    if value is not None and not isinstance(value, Mapping):
        raise _fail(
            "hooks",
            value,
            "expected a mapping of hook name (e.g. 'on_client_connect') to a function",
        )
    return MappingProxyType(dict(value or {}))


@attrs.frozen(slots=True, kw_only=True)
class ServerConfig:
    """Every server option. Durations are seconds, sizes are bytes."""

    # Where to listen. ``port`` configures the ``ws`` transport, ``tcp_port`` the ``tcp`` one;
    # ``transports`` names the transports explicitly (default: derived from the two ports).
    host: str = attrs.field(default=DEFAULT_HOST, validator=_text)
    port: int | None = attrs.field(default=DEFAULT_PORT, validator=_port)
    tcp_port: int | None = attrs.field(default=None, validator=_port)
    path: str = attrs.field(default="/", validator=_path)
    transports: tuple[str, ...] | None = attrs.field(default=None, converter=_tuple_or_none)

    # Limits.
    max_connections: int = attrs.field(default=DEFAULT_MAX_CONNECTIONS, validator=_int_at_least(1))
    max_connections_per_ip: int = attrs.field(
        default=DEFAULT_MAX_CONNECTIONS_PER_IP, validator=_int_at_least(1)
    )
    max_rooms: int = attrs.field(default=DEFAULT_MAX_ROOMS, validator=_int_at_least(1))
    max_rooms_per_client: int = attrs.field(default=DEFAULT_MAX_ROOMS_PER_CLIENT, validator=_int_at_least(1))
    max_payload_size: int = attrs.field(default=DEFAULT_MAX_PAYLOAD_SIZE, validator=_int_at_least(0))
    max_frame_size: int = attrs.field(default=DEFAULT_MAX_FRAME_SIZE, validator=_int_at_least(16))
    max_event_name_length: int = attrs.field(default=DEFAULT_MAX_NAME_LENGTH, validator=_int_at_least(1))
    max_pending_acks: int = attrs.field(default=DEFAULT_MAX_PENDING_ACKS, validator=_int_at_least(1))
    max_queued_messages: int = attrs.field(default=DEFAULT_MAX_QUEUED_MESSAGES, validator=_int_at_least(1))
    max_buffered_bytes: int = attrs.field(default=DEFAULT_MAX_BUFFERED_BYTES, validator=_int_at_least(1024))

    # Rate limiting: per-client override > per-event > global (the ``rate_limiter`` backend).
    rate_limit: RateLimit | None = attrs.field(default=RateLimit(100, 1.0), converter=_rate_limit)
    event_rate_limits: Mapping[str, RateLimit] = attrs.field(factory=dict, converter=_event_rate_limits)

    # Providers: a name registered by a plugin, or an object of that kind.
    rate_limiter: Any = attrs.field(
        default="token-bucket",
        validator=_name_or_object("rate limiter", ("check", "reset", "cleanup", "size")),
    )
    ip_tracker: Any = attrs.field(
        default="memory",
        validator=_name_or_object("IP tracker", ("check", "add", "remove", "count")),
    )
    id_generator: Any = attrs.field(default="uuid4", validator=_name_or_object("client ID generator", ()))
    broker: Any = attrs.field(
        default="local", validator=_name_or_object("broker", ("start", "publish", "stop"))
    )

    # Timing.
    heartbeat_interval: float = attrs.field(default=DEFAULT_HEARTBEAT_INTERVAL, validator=_seconds)
    heartbeat_timeout: float = attrs.field(default=DEFAULT_HEARTBEAT_TIMEOUT, validator=_seconds)
    connect_timeout: float = attrs.field(default=DEFAULT_CONNECT_TIMEOUT, validator=_seconds)
    # How long a client's output may stay above max_buffered_bytes before it is dropped.
    slow_consumer_timeout: float = attrs.field(default=DEFAULT_SLOW_CONSUMER_TIMEOUT, validator=_seconds)
    ack_timeout: float = attrs.field(default=DEFAULT_ACK_TIMEOUT, validator=_seconds)
    shutdown_timeout: float = attrs.field(default=DEFAULT_SHUTDOWN_TIMEOUT, validator=_seconds)
    graceful_shutdown: bool = attrs.field(default=False, validator=_bool)

    # Used by network transports and the health plugin.
    allowed_origins: tuple[str, ...] | None = attrs.field(default=None, converter=_tuple_or_none)
    # With allowed_origins set, whether a WebSocket upgrade without an Origin header (not a
    # browser) is let in.
    allow_missing_origin: bool = attrs.field(default=False, validator=_bool)
    # Peers whose X-Forwarded-For is believed (reverse proxies): addresses or networks.
    trusted_proxies: tuple[str, ...] = attrs.field(default=(), converter=_networks)
    # permessage-deflate for WebSocket (off: compression costs CPU and memory per connection).
    compression: bool = attrs.field(default=False, validator=_bool)
    tls: TLSConfig | None = attrs.field(default=None, converter=_tls)
    health_endpoint: str | None = attrs.field(default=DEFAULT_HEALTH_ENDPOINT, converter=_health_endpoint)
    # A port of its own for the health routes (the ``http`` transport of stelar-health), for
    # servers with no WebSocket port to mount them on.
    health_port: int | None = attrs.field(default=None, validator=_port)
    # ``fn(request, stats)`` (sync or async) replacing the health body and status.
    custom_health_handler: Callable[..., Any] | None = attrs.field(default=None, validator=_callable_or_none)

    # The seed's levels, False (silent), a logging.Logger to forward to, or None (leave as is).
    logger: Any = attrs.field(default=None, validator=_logger)
    hooks: Mapping[str, Callable[..., Any]] = attrs.field(factory=dict, converter=_hooks)
    block_plugins: tuple[str, ...] = attrs.field(default=(), converter=_block_list)
    # Options of third-party plugins, by plugin: ``{"my-plugin": {...}}``.
    plugin_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_timeout < self.heartbeat_interval:
            raise ConfigError(
                f"option 'heartbeat_timeout' = {self.heartbeat_timeout!r} is invalid: must be at least "
                f"heartbeat_interval ({self.heartbeat_interval!r})"
            )
        if self.max_frame_size < self.max_payload_size:
            raise ConfigError(
                f"option 'max_frame_size' = {self.max_frame_size!r} is invalid: must be at least "
                f"max_payload_size ({self.max_payload_size!r})"
            )
        if self.max_event_name_length > 0xFFFF:
            raise _fail("max_event_name_length", self.max_event_name_length, "the wire allows at most 65535")

    @property
    def transport_names(self) -> tuple[str, ...]:
        """The transports to start: ``transports`` if given, else those the ports ask for."""
        if self.transports is not None:
            return self.transports
        names = []
        if self.port is not None:
            names.append("ws")
        if self.tcp_port is not None:
            names.append("tcp")
        if self.health_port is not None:
            names.append("http")
        return tuple(names)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(a.name for a in attrs.fields(cls))

    @classmethod
    def check_option_names(cls, options: Mapping[str, Any]) -> None:
        known = cls.option_names()
        for name in options:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown option {name!r}{hint}")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> ServerConfig:
        """Build from keyword-style options, naming any unknown key."""
        cls.check_option_names(options)
        return cls(**options)

    @classmethod
    def read_toml(cls, path: str | Path) -> dict[str, Any]:
        """The options of a TOML file (at top level or under ``[stelar]``), names checked."""
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        options = dict(data.get("stelar", data))
        cls.check_option_names(options)
        return options

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> ServerConfig:
        """Build from a TOML file; ``overrides`` win over the file."""
        return cls.from_mapping({**cls.read_toml(path), **overrides})

    def redacted(self) -> dict[str, Any]:
        """The options as plain data with secrets hidden, for ``get_config`` and logs."""
        result: dict[str, Any] = {}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if field.name == "tls":
                value = None if value is None else {"cert": value.cert, "key": "***"}
            elif field.name == "hooks":
                value = sorted(value)
            elif field.name == "logger":
                value = value.name if isinstance(value, logging.Logger) else value
            elif field.name == "custom_health_handler":
                value = None if value is None else getattr(value, "__qualname__", repr(value))
            elif field.name in ("rate_limiter", "ip_tracker", "id_generator", "broker"):
                value = value if isinstance(value, str) else f"<custom {type(value).__name__}>"
            elif isinstance(value, RateLimit):
                value = attrs.asdict(value)
            elif field.name == "event_rate_limits":
                value = {event: attrs.asdict(limit) for event, limit in value.items()}
            elif field.name == "plugin_options":
                value = _redact_mapping(value)
            result[field.name] = value
        return result


def _redact_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    redacted: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, Mapping):
            redacted[key] = _redact_mapping(item)
        elif any(word in key.lower() for word in _SECRET_WORDS):
            redacted[key] = "***"
        else:
            redacted[key] = item
    return redacted


# Options that only a restart can apply: they shape listeners, providers or the plugin set.
RESTART_OPTIONS = frozenset(
    {
        "host",
        "port",
        "tcp_port",
        "path",
        "transports",
        "tls",
        "rate_limiter",
        "ip_tracker",
        "broker",
        "block_plugins",
        "plugin_options",
        "health_endpoint",
        "compression",
        "health_port",
    }
)
