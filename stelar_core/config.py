"""The core's configuration: frozen attrs classes whose validators name the option, value and rule.

``ServerConfig`` holds the core's own options and, in ``plugins``, every plugin's section of
options (declared by the plugins, see ``stelar_core.plugins.options``); ``StelarServer(**options)``
builds it, :func:`read_toml` reads the same options from a TOML file. Variants are made with
``attrs.evolve`` (which ``update_config`` uses), so every converter here is idempotent.
"""

from __future__ import annotations

import ipaddress
import logging
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from stelar_core import logs, validation
from stelar_core.clock import REAL_CLOCK, Clock
from stelar_core.errors import ConfigError
from stelar_core.room_policies import RoomPolicies, room_policies
from stelar_core.validation import fail, validator
from stelar_core.values import Options

MiB = 1024 * 1024

DEFAULT_HOST = "127.0.0.1"
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
DEFAULT_MAX_CONCURRENT_REQUESTS = 16
DEFAULT_MAX_RECOVERY_REPLAY = 1000
DEFAULT_MAX_HISTORY_ROOMS = 10_000
DEFAULT_RECOVERY_WINDOW = 120.0
DEFAULT_MAX_RESUMABLE_SESSIONS = 10_000
DEFAULT_MAX_CACHED_ANSWERS = 1024
LOG_LEVELS = tuple(logs.LEVELS)
_SECRET_WORDS = ("password", "secret", "token", "key", "credential")


def _int(minimum: int) -> Any:
    return validator(validation.integer(minimum))


_SECONDS = validator(validation.seconds)


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise fail(attribute.name, value, "expected seconds >= 0 (0 turns it off)")


_BOOL = validator(validation.boolean)


def _transports(value: Any) -> tuple[str, ...] | None:
    return validation.strings_or_none("transports", value)


def _plugin_choice(value: Any) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and ":" in key and isinstance(plugin, str) for key, plugin in value.items()
    ):
        raise fail(
            "plugin_choice",
            value,
            'a mapping of "kind:name" to a plugin name, e.g. {"broker:redis": "redis"}',
        )
    return MappingProxyType(dict(value))


def _block_list(value: Any) -> tuple[str, ...]:
    return validation.strings_or_none("block_plugins", value) or ()


def networks(option: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``), as a tuple of strings."""
    networks = validation.strings_or_none(option, value) or ()
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            allowed = "expected IP addresses or networks (10.0.0.0/8)"
            raise fail(option, network, allowed) from None
    return networks


@attrs.frozen(slots=True)
class RateLimit:
    """At most ``max_points`` messages per ``window`` seconds (a token bucket of that size)."""

    max_points: int = attrs.field(validator=_int(1))
    window: float = attrs.field(default=1.0, validator=_SECONDS)

    @classmethod
    def coerce(cls, value: RateLimit | Mapping[str, Any] | None, option: str) -> RateLimit | None:
        if value is None or isinstance(value, RateLimit):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"max_points", "window"}
            if unknown:
                raise fail(
                    option,
                    dict(value),
                    f"unknown keys {sorted(unknown)}; allowed: max_points, window",
                )
            try:
                return cls(**value)
            except ConfigError as exc:
                raise ConfigError(f"in option {option!r}: {exc}") from None
            except TypeError:
                raise fail(option, dict(value), "needs max_points (and optionally window)") from None
        raise fail(option, value, "expected RateLimit(max_points, window), a mapping of those, or None")


def _rate_limit(value: Any) -> RateLimit | None:
    return RateLimit.coerce(value, "rate_limit")


def _event_rate_limits(value: Mapping[str, Any] | None) -> Mapping[str, RateLimit]:
    if value is not None and not isinstance(value, Mapping):
        raise fail("event_rate_limits", value, "expected a mapping of event name to RateLimit")
    limits: dict[str, RateLimit] = {}
    for event, limit in (value or {}).items():
        coerced = RateLimit.coerce(limit, f"event_rate_limits[{event!r}]")
        if coerced is None:
            raise fail(f"event_rate_limits[{event!r}]", limit, "expected a RateLimit")
        limits[event] = coerced
    return MappingProxyType(limits)


def _logger(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not logs.is_valid(value):
        raise fail(
            attribute.name, value, f"expected one of {', '.join(LOG_LEVELS)}, False, a logging.Logger or None"
        )


def _hooks(value: Mapping[str, Callable[..., Any]] | None) -> Mapping[str, Callable[..., Any]]:
    if value is not None and not isinstance(value, Mapping):
        raise fail(
            "hooks",
            value,
            "expected a mapping of hook name (e.g. 'on_client_connect') to a function",
        )
    return MappingProxyType(dict(value or {}))


def _name_or_object(kind: str) -> Any:
    def check(option: str, value: Any) -> Any:
        if isinstance(value, str) and not value:
            raise fail(option, value, f"expected the name of a {kind} provider, or a {kind} object")
        return value  # an object is checked against its protocol when the server is built

    return validator(check)


def _clock(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Clock):
        raise fail(attribute.name, value, "expected a clock with now() and call_later(delay, callback)")


def _sections(value: Mapping[str, Options] | None) -> Mapping[str, Options]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(slots=True, kw_only=True)
class ServerConfig:
    """The core's options, and the plugins' sections. Durations are seconds, sizes are bytes."""

    # Where network transports listen; ``transports`` names those to start (default: every
    # installed transport its own options enable, e.g. ``ws`` when ``port`` is set).
    host: str = attrs.field(default=DEFAULT_HOST, validator=validator(validation.text))
    transports: tuple[str, ...] | None = attrs.field(default=None, converter=_transports)
    # Listen with SO_REUSEPORT, so that several processes share the ports and the kernel spreads
    # connections between them (``stelar serve --workers N`` sets it). Linux and BSDs.
    reuse_port: bool = attrs.field(default=False, validator=_BOOL)

    # Limits.
    max_connections: int = attrs.field(default=DEFAULT_MAX_CONNECTIONS, validator=_int(1))
    max_connections_per_ip: int = attrs.field(default=DEFAULT_MAX_CONNECTIONS_PER_IP, validator=_int(1))
    max_rooms: int = attrs.field(default=DEFAULT_MAX_ROOMS, validator=_int(1))
    max_rooms_per_client: int = attrs.field(default=DEFAULT_MAX_ROOMS_PER_CLIENT, validator=_int(1))
    max_payload_size: int = attrs.field(default=DEFAULT_MAX_PAYLOAD_SIZE, validator=_int(0))
    max_frame_size: int = attrs.field(default=DEFAULT_MAX_FRAME_SIZE, validator=_int(16))
    max_event_name_length: int = attrs.field(default=DEFAULT_MAX_NAME_LENGTH, validator=_int(1))
    max_pending_acks: int = attrs.field(default=DEFAULT_MAX_PENDING_ACKS, validator=_int(1))
    max_queued_messages: int = attrs.field(default=DEFAULT_MAX_QUEUED_MESSAGES, validator=_int(1))
    max_buffered_bytes: int = attrs.field(default=DEFAULT_MAX_BUFFERED_BYTES, validator=_int(1024))
    # Requests of one client that ``on_ack(..., concurrent=True)`` handlers answer side by side.
    max_concurrent_requests: int = attrs.field(default=DEFAULT_MAX_CONCURRENT_REQUESTS, validator=_int(1))

    # Rooms by pattern: history and delivery (docs/delivery.md).
    rooms: RoomPolicies = attrs.field(factory=lambda: RoomPolicies({}), converter=room_policies)
    # Publications one recovery replays at most; a client further behind is told recovered: false.
    max_recovery_replay: int = attrs.field(default=DEFAULT_MAX_RECOVERY_REPLAY, validator=_int(1))
    # Rooms whose history the in-memory store keeps at most (the least recently used go first).
    max_history_rooms: int = attrs.field(default=DEFAULT_MAX_HISTORY_ROOMS, validator=_int(1))
    # Seconds a closed session can be resumed by its client (id, rooms, metadata, the answers to
    # its requests; docs/delivery.md); 0: never.
    recovery_window: float = attrs.field(default=DEFAULT_RECOVERY_WINDOW, validator=_non_negative)
    # Closed sessions kept for resumption at most (the oldest go first, as if expired).
    max_resumable_sessions: int = attrs.field(default=DEFAULT_MAX_RESUMABLE_SESSIONS, validator=_int(1))
    # Presence (docs/presence.md): diffs go out at most this often; a member whose last connection
    # left is announced gone only this long after; a member's state is at most this many bytes.
    presence_interval: float = attrs.field(default=1.0, validator=_SECONDS)
    presence_grace: float = attrs.field(default=5.0, validator=_non_negative)
    max_presence_state: int = attrs.field(default=1024, validator=_int(2))
    # Answers to a client's requests kept per session, to answer them again after a resumption
    # (each until the client uses its ack id again: at most its requests in flight).
    max_cached_answers: int = attrs.field(default=DEFAULT_MAX_CACHED_ANSWERS, validator=_int(1))

    # Rate limiting: per-client override > per-event > global (the ``rate_limiter`` backend).
    rate_limit: RateLimit | None = attrs.field(default=RateLimit(100, 1.0), converter=_rate_limit)
    event_rate_limits: Mapping[str, RateLimit] = attrs.field(factory=dict, converter=_event_rate_limits)
    # A metadata key (set by middleware, e.g. "user_id") whose value the limits count for instead
    # of the client ID: a user's connections share one bucket (on every node, with a shared limiter).
    rate_limit_key: str | None = attrs.field(
        default=None, validator=validator(validation.optional(validation.text))
    )

    # Providers: a name registered by a plugin, or an object of that kind.
    rate_limiter: Any = attrs.field(default="token-bucket", validator=_name_or_object("rate limiter"))
    ip_tracker: Any = attrs.field(default="memory", validator=_name_or_object("IP tracker"))
    id_generator: Any = attrs.field(default="uuid4", validator=_name_or_object("client ID generator"))
    broker: Any = attrs.field(default="local", validator=_name_or_object("broker"))

    # Timing.
    heartbeat_interval: float = attrs.field(default=DEFAULT_HEARTBEAT_INTERVAL, validator=_SECONDS)
    heartbeat_timeout: float = attrs.field(default=DEFAULT_HEARTBEAT_TIMEOUT, validator=_SECONDS)
    connect_timeout: float = attrs.field(default=DEFAULT_CONNECT_TIMEOUT, validator=_SECONDS)
    # How long a client's output may stay above max_buffered_bytes before it is dropped.
    slow_consumer_timeout: float = attrs.field(default=DEFAULT_SLOW_CONSUMER_TIMEOUT, validator=_SECONDS)
    ack_timeout: float = attrs.field(default=DEFAULT_ACK_TIMEOUT, validator=_SECONDS)
    shutdown_timeout: float = attrs.field(default=DEFAULT_SHUTDOWN_TIMEOUT, validator=_SECONDS)
    graceful_shutdown: bool = attrs.field(default=False, validator=_BOOL)
    # What heartbeats, connect and ACK timeouts read (tests pass stelar_core.testing.FakeClock).
    clock: Clock = attrs.field(default=REAL_CLOCK, validator=_clock)

    # The seed's levels, False (silent), a logging.Logger to forward to, or None (leave as is).
    logger: Any = attrs.field(default=None, validator=_logger)
    hooks: Mapping[str, Callable[..., Any]] = attrs.field(factory=dict, converter=_hooks)
    block_plugins: tuple[str, ...] = attrs.field(default=(), converter=_block_list)
    # Which plugin provides a name that two plugins register: {"broker:redis": "my-redis"}.
    plugin_choice: Mapping[str, str] = attrs.field(factory=dict, converter=_plugin_choice)
    # Every plugin's options, by section (filled by the server from the plugins' declarations).
    plugins: Mapping[str, Options] = attrs.field(factory=dict, converter=_sections)

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
            raise fail("max_event_name_length", self.max_event_name_length, "the wire allows at most 65535")

    def plugin(self, section: str) -> Options:
        """The options of one plugin's section (``config.plugin("ws").port``)."""
        try:
            return self.plugins[section]
        except KeyError:
            raise ConfigError(f"no plugin declares options in section {section!r}") from None

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(a.name for a in attrs.fields(cls) if a.name != "plugins")

    def redacted(self) -> dict[str, Any]:
        """The core's options as plain data with secrets hidden, for ``get_config`` and logs."""
        result: dict[str, Any] = {}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if field.name == "plugins":
                continue
            if field.name == "hooks":
                value = sorted(value)
            elif field.name == "logger":
                value = value.name if isinstance(value, logging.Logger) else value
            elif field.name in ("rate_limiter", "ip_tracker", "id_generator", "broker", "clock"):
                value = value if isinstance(value, str) else f"<custom {type(value).__name__}>"
            elif isinstance(value, RateLimit):
                value = attrs.asdict(value)
            elif field.name == "rooms":
                value = value.to_dict()
            elif field.name == "event_rate_limits":
                value = {event: attrs.asdict(limit) for event, limit in value.items()}
            result[field.name] = value
        return result


def read_toml(path: str | Path) -> dict[str, Any]:
    """The options of a TOML file: at top level or under ``[stelar]``; a plugin's section is a
    table (``[stelar.redis]``). Names are checked when the server is built."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    return dict(data.get("stelar", data))


def merge_options(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``; a plugin's section given in both is merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            value = {**merged[key], **value}
        merged[key] = value
    return merged


def is_secret(name: str) -> bool:
    """Whether a name says its value is a secret (``password``, ``api_key``; not ``max_keys``)."""
    return any(part in _SECRET_WORDS for part in name.lower().split("_"))


# Core options that only a restart can apply: they shape listeners, providers or the plugin set.
# (Each plugin option says so itself: ``restart`` in its declaration.)
RESTART_OPTIONS = frozenset(
    {
        "host",
        "transports",
        "reuse_port",
        "rate_limiter",
        "ip_tracker",
        "id_generator",
        "broker",
        "block_plugins",
        "plugin_choice",
        "clock",
    }
)
