"""Presence rooms shared through Redis: each node writes its own members of each presence room
(``P:node:N:presence:R``, presence key -> ``[stamp, state]``), and every node reads all live nodes' with one
script per room per ``presence_interval``. A dead node's members drop out of every read when its
registration expires (``node_timeout``), and the next heartbeat's sweep deletes them.

The node keeps a copy of what it wrote, so that after Redis restarted empty it writes its presence
again with the rest of its state (``RedisNode._resync``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stelar_core.plugin_api import dump_json, load_json
from stelar_redis.keys import Keys
from stelar_redis.node import REDIS_FAILURES, ClusterUnavailable, RedisNode
from stelar_redis.presence import Op


class RedisRoomPresence:
    def __init__(self, node: RedisNode, send: Callable[[Op], None]) -> None:
        self._node = node
        self._keys: Keys = node.keys
        self._send = send  # through the broker's writer: batched, in order, never waited for
        self._written: dict[str, dict[str, bytes]] = {}  # room -> key -> state, as written
        node.resyncs.append(self.snapshot)

    def _hash(self, room: str) -> str:
        return self._keys.node_key(self._node.node_id, f"presence:{room}")

    def write(self, room: str, key: str, state: Any, stamp: float) -> None:
        encoded = dump_json([stamp, state])
        written = self._written.setdefault(room, {})
        if not written:
            self._send(("SADD", self._keys.node_key(self._node.node_id, "prooms"), room))
        written[key] = encoded
        self._send(("HSET", self._hash(room), key, encoded))

    def remove(self, room: str, key: str) -> None:
        written = self._written.get(room, {})
        written.pop(key, None)
        if not written:
            self._written.pop(room, None)
        self._send(("HDEL", self._hash(room), key))

    async def read(self, room: str) -> dict[str, tuple[float, Any]]:
        try:
            items = await self._node.scripts.read(
                keys=[self._keys.nodes], args=[self._keys.prefix, "presence", room, ""]
            )
        except REDIS_FAILURES as exc:
            raise ClusterUnavailable(f"presence of {room!r} cannot be read: {exc}") from exc
        return latest_presence(items)

    def snapshot(self) -> list[Op]:
        """This node's presence, written again (after Redis lost it)."""
        ops: list[Op] = []
        for room, written in self._written.items():
            ops.append(("SADD", self._keys.node_key(self._node.node_id, "prooms"), room))
            for key, state in written.items():
                ops.append(("HSET", self._hash(room), key, state))
        return ops


def latest_presence(items: list[Any]) -> dict[str, tuple[float, Any]]:
    """A presence read's reply (keys and stamped states of every node): each member's latest."""
    latest: dict[str, tuple[float, Any]] = {}
    for key, value in zip(items[::2], items[1::2], strict=True):
        stamp, state = load_json(value)
        name = key.decode()
        if name not in latest or latest[name][0] < stamp:
            latest[name] = (stamp, state)
    return latest
