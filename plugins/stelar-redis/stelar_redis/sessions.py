"""Closed sessions shared through Redis, so that a client resumes its session on any node.

A session is written when its connection closes, for ``recovery_window`` seconds, under a key
made of its ID and a digest of its resume token: a client with another token finds nothing and
removes nothing, and the token itself is never stored. Resuming takes the record with ``GETDEL``
(a session is resumed once); resuming on the node that kept it deletes the shared copy.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import msgpack

from stelar_core.plugin_api import SessionRecord
from stelar_redis.envelope import EnvelopeError
from stelar_redis.keys import Keys
from stelar_redis.node import RedisNode
from stelar_redis.presence import Op

NOT_SHARED = "sessions_not_shared"


class RedisSessions:
    def __init__(self, node: RedisNode, send: Callable[[Op], None], count: Callable[[str], None]) -> None:
        self._node = node
        self._keys: Keys = node.keys
        self._send = send  # through the broker's writer: batched, in order, never waited for
        self._count = count

    def _key(self, session_id: str, token: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        return self._keys.session(session_id, digest)

    def keep(self, record: SessionRecord, token: str, ttl: float) -> None:
        try:
            packed = pack(record, self._node.options.max_message_size)
        except EnvelopeError as exc:
            # The session stays resumable on this node only.
            self._count(NOT_SHARED)
            self._node.log.info("session %s not shared with other nodes: %s", record.id, exc)
            return
        self._send(("SET", self._key(record.id, token), packed, "PX", max(1, int(ttl * 1000))))

    async def take(self, session_id: str, token: str) -> SessionRecord | None:
        node = self._node
        key = self._key(session_id, token)
        packed = await asyncio.wait_for(node.client.getdel(key), node.options.command_timeout)
        return unpack(packed) if isinstance(packed, bytes) else None

    def forget(self, session_id: str, token: str) -> None:
        self._send(("DEL", self._key(session_id, token)))


def pack(record: SessionRecord, max_size: int) -> bytes:
    """``[id, metadata, rooms, received, answers]`` in msgpack; ``EnvelopeError`` when the
    metadata holds what msgpack cannot carry or the whole is over ``max_size``."""
    try:
        packed: bytes = msgpack.packb(
            [record.id, record.metadata, sorted(record.rooms), record.received, record.answers],
            use_bin_type=True,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise EnvelopeError(f"its metadata cannot be sent to Redis: {exc}") from None
    if len(packed) > max_size:
        raise EnvelopeError(f"{len(packed)} bytes, over redis.max_message_size ({max_size})")
    return packed


def unpack(packed: bytes) -> SessionRecord | None:
    """A record written by ``pack`` (None, and nothing resumed, for anything else)."""
    try:
        session_id, metadata, rooms, received, answers = msgpack.unpackb(
            packed, raw=False, strict_map_key=False
        )
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not (isinstance(session_id, str) and isinstance(metadata, dict) and isinstance(rooms, list)):
        return None
    if not (isinstance(received, int) and isinstance(answers, dict)):
        return None
    kept: dict[int, Any] = {int(k): v for k, v in answers.items() if isinstance(v, bytes)}
    return SessionRecord(session_id, metadata, frozenset(map(str, rooms)), received, kept)
