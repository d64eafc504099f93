"""Client options: frozen attrs, validated like the server's (a bad value names option, value
and rule)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from stelar_core import validation
from stelar_core.clock import REAL_CLOCK, Clock
from stelar_core.config import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_PAYLOAD_SIZE
from stelar_core.errors import ConfigError
from stelar_core.transports.base import DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_WRITE_TIMEOUT, ConnectOptions
from stelar_core.validation import fail, validator

CLIENT_HOOKS = (
    "on_before_emit",
    "on_message",
    "on_state_change",
    "on_reconnect_delay",
    "on_message_queued",
    "on_queue_drained",
    "on_error",
)
MODES = ("ws", "tcp")


_positive = validator(validation.seconds)
_bool = validator(validation.boolean)
_callable_or_none = validator(validation.function_or_none)
_optional_text = validator(validation.optional(validation.text))


def _count(minimum: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    return validator(validation.integer(minimum))


def _attempts(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise fail(attribute.name, value, "expected an integer >= 0, or None for unlimited")


def _mode(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value not in MODES:
        raise fail(attribute.name, value, "expected 'ws', 'tcp' or None (from the URL)")


_optional_positive = validator(validation.optional(validation.seconds))


def _hooks(value: Mapping[str, Callable[..., Any]] | None) -> Mapping[str, Callable[..., Any]]:
    hooks = dict(value or {})
    for name, function in hooks.items():
        if name not in CLIENT_HOOKS:
            raise ConfigError(f"unknown client hook {name!r}; known hooks: {', '.join(CLIENT_HOOKS)}")
        if not callable(function):
            raise fail(f"hooks[{name!r}]", function, "expected a function")
    return MappingProxyType(hooks)


def _string_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(slots=True, kw_only=True)
class ClientOptions:
    """Every client option. Durations are seconds (the seed's are milliseconds)."""

    mode: str | None = attrs.field(default=None, validator=_mode)
    auth: Mapping[str, Any] = attrs.field(factory=dict, converter=_string_map)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_string_map)
    reconnection: bool = attrs.field(default=True, validator=_bool)
    reconnection_attempts: int | None = attrs.field(default=10, validator=_attempts)
    reconnection_delay: float = attrs.field(default=1.0, validator=_positive)
    max_reconnection_delay: float = attrs.field(default=30.0, validator=_positive)
    custom_reconnect_delay: Callable[[int, float, float], float] | None = attrs.field(
        default=None, validator=_callable_or_none
    )
    # None: 2.5 heartbeats of the server (its welcome says how often it pings).
    heartbeat_timeout: float | None = attrs.field(default=None, validator=_optional_positive)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    ack_timeout: float = attrs.field(default=5.0, validator=_positive)
    message_queue_size: int = attrs.field(default=100, validator=_count(0))
    max_pending_requests: int = attrs.field(default=1024, validator=_count(1))
    max_payload_size: int = attrs.field(default=DEFAULT_MAX_PAYLOAD_SIZE, validator=_count(0))
    max_frame_size: int = attrs.field(default=DEFAULT_MAX_FRAME_SIZE, validator=_count(16))
    reject_unauthorized: bool = attrs.field(default=True, validator=_bool)
    ca_file: str | None = attrs.field(default=None)
    # A client certificate for servers that ask for one (mTLS): cert, key, password; and
    # min_version. Read by the TLS provider (stelar-tls), which validates it.
    tls: Mapping[str, Any] = attrs.field(factory=dict, converter=_string_map)
    compression: bool = attrs.field(default=False, validator=_bool)
    # Output the server has not read yet: above this for write_timeout seconds, the link is
    # dropped (and, with reconnection, opened again) instead of growing without bound.
    max_buffered_bytes: int = attrs.field(default=DEFAULT_MAX_BUFFERED_BYTES, validator=_count(1024))
    write_timeout: float = attrs.field(default=DEFAULT_WRITE_TIMEOUT, validator=_positive)
    # Sent as the WebSocket upgrade's Origin header: a server with allowed_origins refuses
    # upgrades without one (browsers always send theirs).
    origin: str | None = attrs.field(default=None, validator=_optional_text)
    hooks: Mapping[str, Callable[..., Any]] = attrs.field(factory=dict, converter=_hooks)
    # Called for each event and request: the W3C traceparent to attach to it, or None (the
    # context is sent only to servers that trace). stelar-otel's ``traceparent`` gives the
    # current OpenTelemetry span's.
    trace_context: Callable[[], str | None] | None = attrs.field(default=None, validator=_callable_or_none)

    def __attrs_post_init__(self) -> None:
        if self.max_reconnection_delay < self.reconnection_delay:
            raise fail(
                "max_reconnection_delay", self.max_reconnection_delay, "must be at least reconnection_delay"
            )

    def connect_options(
        self, clock: Clock = REAL_CLOCK, ssl_context: ssl.SSLContext | None = None
    ) -> ConnectOptions:
        """What the transport's connector needs of these options (and the client's clock, and
        the TLS context it made once for all its connections)."""
        return ConnectOptions(
            clock=clock,
            ssl_context=ssl_context,
            tls=dict(self.tls),
            headers=dict(self.headers),
            origin=self.origin,
            reject_unauthorized=self.reject_unauthorized,
            ca_file=self.ca_file,
            compression=self.compression,
            max_frame_size=self.max_frame_size,
            connect_timeout=self.connect_timeout,
            max_buffered_bytes=self.max_buffered_bytes,
            write_timeout=self.write_timeout,
        )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in attrs.fields(cls))

    @classmethod
    def build(cls, options: Mapping[str, Any], base: ClientOptions | None = None) -> ClientOptions:
        known = cls.names()
        for name in options:
            if name not in known:
                raise validation.unknown("client option", name, known)
        return attrs.evolve(base, **options) if base is not None else cls(**options)
