"""Clients of the configured Redis: one server (``redis://``, ``rediss://``, ``unix://``) or a
Redis Cluster (``redis+cluster://host:port,host:port``, ``rediss+cluster://...``, or any
``redis://`` seed with ``cluster = true``), for the nodes (async) and the emitters (both)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES)


def is_cluster(url: str, cluster: bool = False) -> bool:
    """Whether ``url`` (with the ``cluster`` option) names a Redis Cluster."""
    return cluster or urlsplit(url).scheme in CLUSTER_SCHEMES


def seeds(url: str) -> list[tuple[str, int]]:
    """The ``host:port`` pairs of a ``redis+cluster://`` URL (``ValueError`` naming a bad one)."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    found: list[tuple[str, int]] = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, comma separated, got {part!r}")
        found.append((host.strip("[]"), int(port)))
    return found


def _cluster_kwargs(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    kwargs: dict[str, Any] = {}
    if parts.username:
        kwargs["username"] = unquote(parts.username)
    if parts.password:
        kwargs["password"] = unquote(parts.password)
    if parts.scheme == "rediss+cluster":
        kwargs["ssl"] = True
    return kwargs


def async_client(url: str, cluster: bool, **kwargs: Any) -> Any:
    """An asyncio client: ``redis.asyncio.Redis``, or ``RedisCluster`` on a cluster."""
    if not is_cluster(url, cluster):
        return aioredis.Redis.from_url(url, **kwargs)
    if urlsplit(url).scheme not in CLUSTER_SCHEMES:
        return aiocluster.RedisCluster.from_url(url, **kwargs)
    nodes = [aiocluster.ClusterNode(host, port) for host, port in seeds(url)]
    return aiocluster.RedisCluster(startup_nodes=nodes, **_cluster_kwargs(url), **kwargs)


def sync_client(url: str, cluster: bool, **kwargs: Any) -> Any:
    """A synchronous client, as ``async_client``."""
    if not is_cluster(url, cluster):
        return redis.Redis.from_url(url, **kwargs)
    if urlsplit(url).scheme not in CLUSTER_SCHEMES:
        return redis.cluster.RedisCluster.from_url(url, **kwargs)
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in seeds(url)]  # type: ignore[no-untyped-call]
    return redis.cluster.RedisCluster(startup_nodes=nodes, **_cluster_kwargs(url), **kwargs)
