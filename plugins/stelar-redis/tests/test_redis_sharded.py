"""stelar-redis on a Redis Cluster (three primaries with a replica each, on loopback): the broker
conformance suite, sharded pub/sub (one shard per message, a bounded number of pub/sub
connections), a slot migrated and a primary killed under running nodes, the exact per-IP limit
and the emitter."""

from __future__ import annotations

import pytest
from cluster_nodes import FAST, start_in_process

from stelar_core.testing.broker_conformance import BrokerConformance
from stelar_redis.testing import redis_cluster  # noqa: F401  (fixture)

pytestmark = pytest.mark.one_loop


class ClusterBackend:
    """The whole Redis Cluster: killed (its data lost) and started again from its nodes' cluster
    configuration, or paused."""

    def __init__(self, cluster) -> None:
        self._cluster = cluster

    def stop(self) -> None:
        for node in self._cluster.nodes:
            node.kill()

    def start(self) -> None:
        for node in self._cluster.nodes:
            node.start()
        self._cluster.wait_until_ok()

    def pause(self) -> None:
        for node in self._cluster.nodes:
            node.pause()

    def resume(self) -> None:
        for node in self._cluster.nodes:
            node.resume()


class TestRedisClusterBroker(BrokerConformance):
    @pytest.fixture
    async def cluster(self, redis_cluster):  # noqa: F811
        servers = []

        async def make(count, **options):
            made = await start_in_process(
                redis_cluster.url, count, transports=["memory"], redis=FAST, **options
            )
            servers.extend(made)
            return made

        yield make
        for server in reversed(servers):
            await server.stop()

    @pytest.fixture
    def backend(self, redis_cluster):  # noqa: F811
        return ClusterBackend(redis_cluster)
