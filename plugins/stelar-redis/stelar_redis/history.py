"""Room history in Redis: one stream per room, so any node serves any room's history.

Publishing (``RedisBroker``) runs one script: offset increment, publication frame, append, trim,
ttl, publish. A stream rather than a list: its entry IDs are the offsets (``0-OFFSET``), so
"everything after offset N" is one ``XRANGE (0-N + COUNT limit`` that seeks in O(log n), and
``XADD MAXLEN`` trims in the same command; a list would need the index arithmetic redone after
every trim and expiry.

A read waits until this node's subscription to the room is live (confirmed by Redis), so that
every publication after the read reaches this node: the hub holds those that arrive while it
reads and writes them after the replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from stelar_core.plugin_api import HistoryPage, Position, RoomPolicy, new_epoch
from stelar_redis.keys import Keys
from stelar_redis.node import RedisNode


def meta_ttl_ms(meta_ttl: float, policy: RoomPolicy) -> int:
    """How long the epoch and offset live (``history_meta_ttl``): never shorter than the history
    itself."""
    return int(max(meta_ttl, policy.history_ttl) * 1000)


def read_history_args(policy: RoomPolicy, meta_ttl: float, after: int | None, limit: int) -> list[Any]:
    """The arguments of the READ_HISTORY script (its keys: the room's stream and meta hash)."""
    return [meta_ttl_ms(meta_ttl, policy), new_epoch(), "" if after is None else after, limit]


def history_page(reply: list[Any]) -> HistoryPage:
    """The READ_HISTORY script's reply: epoch, offset, then stream entry IDs and frames."""
    epoch, offset, found = reply
    publications = tuple(
        (int(entry_id.split(b"-")[1]), frame) for entry_id, frame in zip(found[::2], found[1::2], strict=True)
    )
    return HistoryPage(Position(epoch.decode(), int(offset)), publications)


class RedisHistory:
    def __init__(self, node: RedisNode, live: Callable[[str], Awaitable[None]]) -> None:
        self._node = node
        self._keys: Keys = node.keys
        self._live = live
        # Reads share the node's command connections with its writer and heartbeats: a thousand
        # clients recovering at once wait their turn here instead of exhausting the pool.
        self._reading = asyncio.Semaphore(max(1, node.options.pool_size // 2))

    async def read(self, room: str, policy: RoomPolicy, after: int | None, limit: int) -> HistoryPage:
        node = self._node
        await asyncio.wait_for(self._live(room), node.options.command_timeout)
        async with self._reading:
            reply = await node.scripts.read_history(
                keys=[self._keys.history(room), self._keys.history_meta(room)],
                args=read_history_args(policy, node.options.history_meta_ttl, after, limit),
            )
        return history_page(reply)
