"""stelar on Redis: many processes act as one server (broker, rate limiter, IP tracker)."""

from stelar_redis.broker import RedisBroker
from stelar_redis.emitter import Emitter, SyncEmitter
from stelar_redis.limits import RedisIPTracker, RedisRateLimiter
from stelar_redis.node import ClusterUnavailable, RedisNode

__all__ = [
    "ClusterUnavailable",
    "Emitter",
    "RedisBroker",
    "RedisIPTracker",
    "RedisNode",
    "RedisRateLimiter",
    "SyncEmitter",
]
