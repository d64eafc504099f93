"""The ``[stelar.redis]`` options and the providers named ``redis``: broker, rate limiter and
IP tracker, all of one server sharing one :class:`RedisNode` (one pool, one registration)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from stelar_core.plugin_api import (
    BrokerFactory,
    ConfigError,
    EmitterProvider,
    IPTrackerFactory,
    LimiterContext,
    OptionDeclarations,
    ProviderContext,
    RateLimiterFactory,
    Register,
    boolean,
    fail,
    hookimpl,
    integer,
    optional,
    seconds,
)
from stelar_redis.broker import RedisBroker
from stelar_redis.connection import CLUSTER_SCHEMES, SCHEMES, seeds
from stelar_redis.emitter import DEFAULT_PARTITIONS, SyncEmitter
from stelar_redis.limits import RedisIPTracker, RedisRateLimiter
from stelar_redis.node import RedisNode


def _url(option: str, value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in SCHEMES:
        raise fail(option, value, "expected a redis://, rediss://, unix:// or redis+cluster:// URL")
    if urlsplit(value).scheme in CLUSTER_SCHEMES:
        try:
            seeds(value)
        except ValueError as exc:
            raise fail(option, value, str(exc)) from None
    return value


def _prefix(option: str, value: Any) -> str:
    # No braces: on a Redis Cluster the prefix is the hash tag of the cluster's state.
    if not isinstance(value, str) or not value or any(c.isspace() or c in "{}" for c in value):
        raise fail(option, value, "expected a non-empty name without spaces or braces")
    return value


@hookimpl
def stelar_add_options(options: OptionDeclarations) -> None:
    options.add(
        "url",
        default="redis://127.0.0.1:6379/0",
        type=str,
        check=_url,
        secret=True,
        help="the Redis every node shares: redis://, rediss://, unix://, or redis+cluster://h:p,h:p",
    )
    options.add(
        "cluster",
        default=False,
        type=bool,
        check=boolean,
        help="the url is a seed of a Redis Cluster (as a redis+cluster:// url says by itself)",
    )
    options.add(
        "partitions",
        default=DEFAULT_PARTITIONS,
        type=int,
        check=integer(1),
        help="Redis Cluster: hash-tag partitions rooms map to (CRC32 mod partitions); the same on every node",
    )
    options.add(
        "prefix",
        default="stelar",
        type=str,
        check=_prefix,
        help="prefix of every key and channel: clusters with different prefixes share a Redis apart",
    )
    options.add("pool_size", default=16, type=int, check=integer(1), help="command connections per node")
    options.add(
        "command_timeout",
        default=1.0,
        type=float,
        check=seconds,
        help="seconds a Redis command may take before it counts as failed (fail fast)",
    )
    options.add("connect_timeout", default=1.0, type=float, check=seconds, help="seconds to connect to Redis")
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
        help="messages (and membership changes) waiting for Redis; past it they are dropped and counted",
    )
    options.add(
        "max_pending_requests",
        default=10_000,
        type=int,
        check=integer(1),
        help="requests to clients of other nodes awaiting an answer, and requests answered for them",
    )
    options.add(
        "heartbeat_interval",
        default=1.0,
        type=float,
        check=seconds,
        help="seconds between a node's registration renewals and liveness probes",
    )
    options.add(
        "node_timeout",
        default=5.0,
        type=float,
        check=seconds,
        help="seconds after its last heartbeat that a node (dead or cut off) leaves every cluster read",
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
    options.add(
        "history_meta_ttl",
        default=86400.0,
        type=float,
        check=seconds,
        help="seconds a room's epoch and offset outlive its last publication (then a new epoch starts)",
    )
    options.add(
        "cluster_max_connections",
        default=None,
        type=int,
        check=optional(integer(1)),
        help="connections across every node, held exactly (with ip_tracker = redis); none: each node's own",
    )
    options.add(
        "fail_open",
        default=True,
        type=bool,
        check=boolean,
        help="while Redis cannot answer: True allows (limits judged by this node alone), False refuses",
    )


def node_of(context: ProviderContext) -> RedisNode:
    """The server's one RedisNode, made by whichever of its Redis providers is built first."""
    options = context.options
    if options.node_timeout <= options.heartbeat_interval:
        raise ConfigError(
            f"option 'redis.node_timeout' ({options.node_timeout}) must be longer than "
            f"'redis.heartbeat_interval' ({options.heartbeat_interval})"
        )
    if options.cluster_max_connections is not None and context.config.ip_tracker != "redis":
        # The limit is held by the Redis IP tracker's admission script: without it, nothing would.
        raise ConfigError(
            "option 'redis.cluster_max_connections' needs ip_tracker = \"redis\" "
            f"(it is {context.config.ip_tracker!r})"
        )
    return context.resources.get("redis", lambda: RedisNode(options))


def _rate_limiter(context: LimiterContext) -> RedisRateLimiter:
    return RedisRateLimiter(node_of(context), context.limit, context.scope)


def _ip_tracker(context: ProviderContext) -> RedisIPTracker:
    return RedisIPTracker(node_of(context))


def _broker(context: ProviderContext) -> RedisBroker:
    return RedisBroker(node_of(context))


@hookimpl
def stelar_register_brokers(register: Register[BrokerFactory]) -> None:
    register("redis", _broker)


@hookimpl
def stelar_register_rate_limiters(register: Register[RateLimiterFactory]) -> None:
    register("redis", _rate_limiter)


@hookimpl
def stelar_register_ip_trackers(register: Register[IPTrackerFactory]) -> None:
    register("redis", _ip_tracker)


@hookimpl
def stelar_register_emitters(register: Register[EmitterProvider]) -> None:
    register("redis", EmitterProvider(SyncEmitter, SCHEMES))
