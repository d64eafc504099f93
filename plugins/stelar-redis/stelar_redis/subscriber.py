"""The broker's listening side: the channels one node is subscribed to, on one Redis or on the
shards of a Redis Cluster. The broker supervises it (``RedisBroker._listen``): any failure, and
on a cluster any change of the slot map under a subscribed channel, makes it drop the whole
subscriber and build a new one (counted as ``broker_resubscribes``), which subscribes to what the
node listens to at that moment, where the refreshed slot map says.

Messages come out as ``(kind, channel, data)``: ``message``, ``subscribe``, ``unsubscribe``
(confirmations, which tell the broker a room's subscription is live).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

# A received message, or a confirmation: (kind, channel, data).
Message = tuple[str, str, Any]
READ_TIMEOUT = 1.0  # seconds a shard's reader waits before looking at its connection again
QUEUE_SIZE = 1024  # messages read from shards and not yet handled (readers wait past it)
SHARDED_KINDS = {"smessage": "message", "ssubscribe": "subscribe", "sunsubscribe": "unsubscribe"}


class SlotMoved(RedisError):
    """A shard unsubscribed this node from a channel it still listens to: the channel's slot
    moved to another shard (a migration or a failover)."""


class ShardLost(RedisError):
    """A shard's pub/sub connection failed (how, in the message)."""


class Subscriber(Protocol):
    async def subscribe(self, *channels: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def get_message(self, timeout: float) -> Message | None: ...

    async def close(self) -> None: ...


class PlainSubscriber:
    """One pub/sub connection to one Redis (``SUBSCRIBE``)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        # Confirmations are read: a room's subscription is live once Redis confirmed it.
        self._pubsub = client.pubsub(ignore_subscribe_messages=False)

    async def subscribe(self, *channels: str) -> None:
        await self._pubsub.subscribe(*channels)

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def get_message(self, timeout: float) -> Message | None:
        message = await self._pubsub.get_message(timeout=timeout)
        if message is None:
            return None
        return message["type"], message["channel"].decode(), message["data"]

    async def close(self) -> None:
        await _close_quietly(self._pubsub, self._client)


class ShardedSubscriber:
    """Sharded pub/sub on a Redis Cluster (``SSUBSCRIBE``): one connection per shard that owns
    a slot this node listens on (so at most one per primary, whatever the number of rooms), each
    read by a task of its own into one bounded queue."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster  # the node's RedisCluster: its slot map places the channels
        self._shards: dict[str, tuple[aioredis.Redis, Any]] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._messages: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue(QUEUE_SIZE)
        self._wanted: set[str] = set()
        self._leaving: Counter[str] = Counter()  # unsubscribes whose confirmation is due
        self._mapped = False

    async def subscribe(self, *channels: str) -> None:
        if not self._mapped:
            # A new subscriber follows the cluster as it is now (after a failover or migration).
            await self._cluster.nodes_manager.initialize()
            self._mapped = True
        # One SSUBSCRIBE per slot (Redis refuses channels of several slots in one).
        by_slot: dict[int, list[str]] = {}
        for channel in channels:
            self._wanted.add(channel)
            by_slot.setdefault(self._cluster.keyslot(channel), []).append(channel)
        for group in by_slot.values():
            name = self._cluster.get_node_from_key(group[0]).name
            reading = name in self._shards
            pubsub = self._shard(name)
            await pubsub.ssubscribe(*group)
            if not reading:  # its connection exists once it subscribed to something
                self._readers.append(asyncio.ensure_future(self._read(pubsub)))

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        self._leaving[channel] += 1
        await self._shard(self._cluster.get_node_from_key(channel).name).sunsubscribe(channel)

    def _shard(self, name: str) -> Any:
        if name not in self._shards:
            node = self._cluster.get_node(node_name=name)
            pool = aioredis.ConnectionPool(
                connection_class=node.connection_class,
                max_connections=2,
                **{**node.connection_kwargs, "socket_timeout": None},
            )
            client = aioredis.Redis(connection_pool=pool)
            self._shards[name] = (client, client.pubsub(ignore_subscribe_messages=False))
        return self._shards[name][1]

    async def _read(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=READ_TIMEOUT)
                if message is not None:
                    await self._messages.put(message)
        except Exception as exc:  # any failure ends this subscriber: the broker makes a new one
            await self._messages.put(exc)

    async def get_message(self, timeout: float) -> Message | None:
        try:
            item = self._messages.get_nowait()
        except asyncio.QueueEmpty:
            try:
                item = await asyncio.wait_for(self._messages.get(), timeout)
            except TimeoutError:
                return None
        if isinstance(item, BaseException):
            raise ShardLost(f"{type(item).__name__}: {item}") from item
        kind = SHARDED_KINDS.get(item["type"], item["type"])
        channel = item["channel"].decode()
        if kind == "unsubscribe":
            if self._leaving[channel] > 0:
                self._leaving[channel] -= 1
                if not self._leaving[channel]:
                    del self._leaving[channel]
            elif channel in self._wanted:
                raise SlotMoved(f"the shard that had channel {channel!r} no longer serves its slot")
        return kind, channel, item["data"]

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for client, pubsub in self._shards.values():
            await _close_quietly(pubsub, client)
        self._shards.clear()


async def _close_quietly(pubsub: Any, client: Any) -> None:
    # The connection is being discarded: a failure to close it says nothing new.
    with contextlib.suppress(Exception):
        await pubsub.aclose()
    with contextlib.suppress(Exception):
        await client.aclose()
