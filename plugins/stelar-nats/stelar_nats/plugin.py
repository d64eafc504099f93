"""The ``[stelar.nats]`` options and the broker named ``nats``."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from stelar_core.plugin_api import (
    BrokerFactory,
    ConfigError,
    OptionDeclarations,
    ProviderContext,
    Register,
    fail,
    hookimpl,
    integer,
    seconds,
)
from stelar_nats.broker import NatsBroker
from stelar_nats.subjects import valid_prefix

SCHEMES = ("nats", "tls", "ws", "wss")


def _servers(option: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(url, str) and urlsplit(url).scheme in SCHEMES for url in value)
    ):
        raise fail(option, value, "expected a list of nats:// (or tls://, ws://, wss://) URLs")
    return list(value)


def _prefix(option: str, value: Any) -> str:
    if not isinstance(value, str) or not valid_prefix(value):
        raise fail(option, value, "expected NATS subject tokens (letters, digits, - and _) joined by dots")
    return value


def _optional_text(option: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise fail(option, value, "expected a non-empty string")
    return value


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add(
        "servers",
        default=["nats://127.0.0.1:4222"],
        type=list,
        check=_servers,
        secret=True,
        help="the NATS servers every node shares (nats://, tls://; user:password@ in a URL works too)",
    )
    options.add(
        "prefix",
        default="stelar",
        type=str,
        check=_prefix,
        help="first tokens of every subject: clusters with different prefixes share a NATS apart",
    )
    for name, help_text in (
        ("credentials", "a .creds file (NATS decentralized auth: JWT and NKey seed)"),
        ("user", "user name for NATS"),
        ("tls_ca", "CA file that signs the NATS servers' certificates (TLS)"),
        ("tls_cert", "this node's client certificate for NATS (mutual TLS)"),
        ("tls_key", "the key of tls_cert"),
    ):
        options.add(name, default=None, check=_optional_text, help=help_text)
    options.add("password", default=None, check=_optional_text, secret=True, help="password of user")
    options.add("token", default=None, check=_optional_text, secret=True, help="authentication token")
    options.add(
        "command_timeout",
        default=1.0,
        type=float,
        check=seconds,
        help="seconds a request to NATS or another node may take before it counts as failed",
    )
    options.add("connect_timeout", default=2.0, type=float, check=seconds, help="seconds to connect to NATS")
    options.add(
        "max_message_size",
        default=1024 * 1024,
        type=int,
        check=integer(1024),
        help="largest envelope (bytes) published to other nodes; larger ones are delivered locally only",
    )
    options.add(
        "max_pending",
        default=10_000,
        type=int,
        check=integer(1),
        help="messages waiting to be handed to NATS; past it they are dropped and counted",
    )
    options.add(
        "max_pending_bytes",
        default=8 * 1024 * 1024,
        type=int,
        check=integer(64 * 1024),
        help="bytes the NATS client may hold unsent (a hung server); past it publishing fails fast",
    )
    options.add(
        "max_pending_requests",
        default=10_000,
        type=int,
        check=integer(1),
        help="requests to clients of other nodes awaiting an answer, and requests answered for them",
    )
    options.add(
        "history_max_size",
        default=1000,
        type=int,
        check=integer(1),
        help="JetStream: publications kept per room with history (at least every room's history_size)",
    )
    options.add(
        "history_max_age",
        default=86400.0,
        type=float,
        check=seconds,
        help="JetStream: seconds a publication is kept (at least every room's history_ttl)",
    )
    options.add(
        "heartbeat_interval",
        default=1.0,
        type=float,
        check=seconds,
        help="seconds between a node's heartbeats (liveness and statistics)",
    )
    options.add(
        "node_timeout",
        default=5.0,
        type=float,
        check=seconds,
        help="seconds after its last heartbeat that a node (dead or cut off) leaves the cluster",
    )
    options.add(
        "reconnect_delay", default=0.05, type=float, check=seconds, help="first delay before reconnecting"
    )
    options.add(
        "reconnect_max_delay",
        default=2.0,
        type=float,
        check=seconds,
        help="longest delay before reconnecting",
    )


def _broker(context: ProviderContext) -> NatsBroker:
    options = context.options
    if options.node_timeout <= options.heartbeat_interval:
        raise ConfigError(
            f"option 'nats.node_timeout' ({options.node_timeout}) must be longer than "
            f"'nats.heartbeat_interval' ({options.heartbeat_interval})"
        )
    if options.tls_key and not options.tls_cert:
        raise ConfigError("option 'nats.tls_key' is given without 'nats.tls_cert'")
    return NatsBroker(options, uuid.uuid4().hex[:16])


@hookimpl
def stelar_register_brokers(register: Register[BrokerFactory]) -> None:
    register("nats", _broker)
