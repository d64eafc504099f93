"""``Emitter``: send into a stelar cluster from code that runs no server (a Django view, a Celery
task, a script), through the cluster's Redis (docs/scaling.md, "From the rest of the backend").

Messages it sends are the envelopes a node publishes: clients cannot tell them from the server's.
A room with history (``rooms=`` as the nodes have it) gives them positions through the same script.
The nodes deliver them as they deliver other nodes' messages: the ``before_broadcast`` veto runs
where a message is sent, so it does not run for the emitter's. ``Emitter`` is async;
``SyncEmitter`` is the same for synchronous code.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from stelar_core.plugin_api import (
    ClusterStats,
    DisconnectCode,
    FrameType,
    RoomPolicy,
    cluster_stats,
    dump_json,
    encode_frame,
    history_json,
)
from stelar_redis.broker import unpack_node_stats
from stelar_redis.connection import async_client, is_cluster, sync_client
from stelar_redis.envelope import Deliver, Disconnect, Membership, encode
from stelar_redis.history import history_page, read_history_args
from stelar_redis.keys import Keys
from stelar_redis.ops import deliver_op, history_op, route_op
from stelar_redis.presence import Op
from stelar_redis.room_presence import latest_presence
from stelar_redis.scripts import Scripts

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_META_TTL = 86400.0
DEFAULT_PARTITIONS = 64  # the nodes' redis.partitions default


class _Messages:
    """What both flavours send, as Redis commands (the flavours only run them)."""

    def __init__(
        self,
        keys: Keys,
        rooms: Mapping[str, Any] | None,
        max_message_size: int,
        history_meta_ttl: float,
        trace_context: Callable[[], str | None] | None,
    ) -> None:
        self.keys = keys
        self.trace_context = trace_context
        self.origin = f"emitter-{uuid.uuid4().hex[:12]}"
        # The nodes' ``rooms`` option (policies or their mappings): rooms with history get positions.
        self.rooms = {
            pattern: policy if isinstance(policy, RoomPolicy) else RoomPolicy(**policy)
            for pattern, policy in (rooms or {}).items()
        }
        self.max_size = max_message_size
        self.meta_ttl = history_meta_ttl

    def to_room(self, scripts: Scripts, room: str, frame: bytes, exclude: tuple[str, ...]) -> Op:
        policy = self.policy(room)
        if policy is not None and policy.keeps_history:
            return history_op(
                self.keys,
                scripts,
                self.origin,
                room,
                policy,
                frame,
                exclude,
                self.max_size,
                self.meta_ttl,
                self._trace(),
            )
        return deliver_op(self.keys, self._deliver(frame, room, None, exclude), room)

    def to_everyone(self, frame: bytes, exclude: tuple[str, ...]) -> Op:
        return deliver_op(self.keys, self._deliver(frame, None, None, exclude), None)

    def _deliver(
        self, frame: bytes, room: str | None, client_id: str | None, exclude: tuple[str, ...]
    ) -> bytes:
        return encode(Deliver(self.origin, frame, room, client_id, exclude, self._trace()), self.max_size)

    def _trace(self) -> str | None:
        """The trace context the nodes' delivery spans continue (stelar-otel), if any."""
        return None if self.trace_context is None else self.trace_context()

    def to_client(self, scripts: Scripts, client_id: str, frame: bytes) -> Op:
        return route_op(self.keys, scripts, client_id, self._deliver(frame, None, client_id, ()))

    def read(self, scripts: Scripts, what: str, argument: str = "") -> Op:
        """One of the cluster reads the nodes make (live nodes only): ``rooms``, ``members``."""
        return ("EVALSHA", scripts.read.sha, 1, self.keys.nodes, self.keys.prefix, what, argument, "")

    def disconnect(self, scripts: Scripts, client_id: str, code: int, reason: str) -> Op:
        payload = encode(Disconnect(self.origin, client_id, code, reason), self.max_size)
        return route_op(self.keys, scripts, client_id, payload)

    def membership(self, scripts: Scripts, client_id: str, room: str, join: bool) -> Op:
        payload = encode(Membership(self.origin, client_id, room, join), self.max_size)
        return route_op(self.keys, scripts, client_id, payload)

    def history(self, scripts: Scripts, room: str, since: int | None, limit: int) -> Op | None:
        """A read of ``room``'s history; None when the room keeps none (per ``rooms``)."""
        policy = self.policy(room)
        if policy is None or not policy.keeps_history:
            return None
        arguments = read_history_args(policy, self.meta_ttl, 0 if since is None else since, max(0, limit))
        keys = (self.keys.history(room), self.keys.history_meta(room))
        return ("EVALSHA", scripts.read_history.sha, 2, *keys, *arguments)

    def policy(self, room: str) -> RoomPolicy | None:
        return next((p for pattern, p in self.rooms.items() if _matches(pattern, room)), None)


def _matches(pattern: str, room: str) -> bool:
    return fnmatch.fnmatchcase(room, pattern)


def event_frame(event: str, data: Any) -> bytes:
    if not event:
        raise ValueError("event name must be a non-empty string")
    return encode_frame(FrameType.JSON, event, dump_json(data))


def binary_frame(event: str, data: bytes) -> bytes:
    if not event:
        raise ValueError("event name must be a non-empty string")
    return encode_frame(FrameType.BINARY, event, bytes(data))


def _exclude(exclude: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if exclude is None:
        return ()
    return (exclude,) if isinstance(exclude, str) else tuple(exclude)


class _Emitting:
    """What both flavours hold: the messages they make, a client of the cluster's Redis, and
    the scripts (loaded on the first send)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "stelar",
        *,
        rooms: Mapping[str, Any] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        history_meta_ttl: float = DEFAULT_META_TTL,
        cluster: bool = False,
        partitions: int = DEFAULT_PARTITIONS,
        trace_context: Callable[[], str | None] | None = None,
    ) -> None:
        keys = Keys(prefix, partitions if is_cluster(url, cluster) else None)
        self._messages = _Messages(keys, rooms, max_message_size, history_meta_ttl, trace_context)
        self._client = self._connect(url, cluster)
        self._scripts = Scripts(self._client, keys.publish)
        self._loaded = False

    # Makes the flavour's Redis client (asyncio's or the plain one) of a url.
    _connect: Callable[[str, bool], Any]


class Emitter(_Emitting):
    """``Emitter(url=..., prefix=...)``: the cluster's Redis and prefix, as its nodes have them
    (and ``rooms=`` as they have it, for positions in rooms with history).

    ``await emitter.to(room, event, data, exclude=None)``, ``to_binary``, ``broadcast``,
    ``to_id``, ``disconnect(client_id)`` and ``join``/``leave(client_id, room)`` (whether a
    node had the client), ``get_rooms()``, ``get_room_members(room)``, ``get_stats()``,
    ``get_presence(room)``, ``history(room, since, limit)``; ``async with`` closes it.
    On a Redis Cluster: a ``redis+cluster://`` url (or ``cluster=True``) and the nodes'
    ``partitions``. ``trace_context``: called per send, a W3C traceparent the nodes' delivery
    spans continue (stelar-otel's ``stelar_otel.client.traceparent``), or None."""

    _connect = staticmethod(async_client)

    async def _run(self, op: Op) -> Any:
        if not self._loaded:
            await self._scripts.load(self._client)
            self._loaded = True
        return await self._client.execute_command(*op)

    async def get_rooms(self) -> list[str]:
        """The rooms with a member on any live node."""
        return sorted(
            {room.decode() for room in await self._run(self._messages.read(self._scripts, "rooms"))}
        )

    async def get_room_members(self, room: str) -> list[str]:
        """The client IDs in ``room``, on every live node."""
        members = await self._run(self._messages.read(self._scripts, "members", room))
        return sorted({member.decode() for member in members})

    async def get_stats(self) -> ClusterStats:
        """The cluster's statistics: every live node's last published figures, summed."""
        nodes = unpack_node_stats(await self._run(self._messages.read(self._scripts, "stats")))
        return cluster_stats(nodes, len(await self.get_rooms()))

    async def get_presence(self, room: str) -> dict[str, Any]:
        """Presence room ``room``'s members on every live node, by key, with their latest state."""
        items = await self._run(self._messages.read(self._scripts, "presence", room))
        return {key: state for key, (_, state) in latest_presence(items).items()}

    async def history(self, room: str, since: int | None = None, limit: int = 100) -> dict[str, Any] | None:
        """A page of ``room``'s history (``{"position", "publications"}``) after offset ``since``;
        None when the room keeps none (per ``rooms=``)."""
        op = self._messages.history(self._scripts, room, since, limit)
        return None if op is None else history_json(history_page(await self._run(op)))

    async def join(self, client_id: str, room: str) -> bool:
        """Put ``client_id`` in ``room`` (its node applies the limits and hooks of a join);
        whether a node had the client."""
        return bool(await self._run(self._messages.membership(self._scripts, client_id, room, True)))

    async def leave(self, client_id: str, room: str) -> bool:
        return bool(await self._run(self._messages.membership(self._scripts, client_id, room, False)))

    async def to(self, room: str, event: str, data: Any = None, exclude: Any = None) -> None:
        frame = event_frame(event, data)
        await self._run(self._messages.to_room(self._scripts, room, frame, _exclude(exclude)))

    async def to_binary(self, room: str, event: str, data: bytes, exclude: Any = None) -> None:
        frame = binary_frame(event, data)
        await self._run(self._messages.to_room(self._scripts, room, frame, _exclude(exclude)))

    async def broadcast(self, event: str, data: Any = None, exclude: Any = None) -> None:
        await self._run(self._messages.to_everyone(event_frame(event, data), _exclude(exclude)))

    async def to_id(self, client_id: str, event: str, data: Any = None) -> bool:
        """Whether a node had the client."""
        return bool(
            await self._run(self._messages.to_client(self._scripts, client_id, event_frame(event, data)))
        )

    async def disconnect(self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = "") -> bool:
        return bool(await self._run(self._messages.disconnect(self._scripts, client_id, code, reason)))

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Emitter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class SyncEmitter(_Emitting):
    """``Emitter`` for synchronous code (a Django view, a Celery task): the same calls, plain."""

    _connect = staticmethod(sync_client)

    def _run(self, op: Op) -> Any:
        if not self._loaded:
            for script in self._scripts.all():
                self._client.script_load(script.script)
            self._loaded = True
        return self._client.execute_command(*op)

    def get_rooms(self) -> list[str]:
        return sorted({room.decode() for room in self._run(self._messages.read(self._scripts, "rooms"))})

    def get_room_members(self, room: str) -> list[str]:
        members = self._run(self._messages.read(self._scripts, "members", room))
        return sorted({member.decode() for member in members})

    def get_stats(self) -> ClusterStats:
        nodes = unpack_node_stats(self._run(self._messages.read(self._scripts, "stats")))
        return cluster_stats(nodes, len(self.get_rooms()))

    def get_presence(self, room: str) -> dict[str, Any]:
        items = self._run(self._messages.read(self._scripts, "presence", room))
        return {key: state for key, (_, state) in latest_presence(items).items()}

    def history(self, room: str, since: int | None = None, limit: int = 100) -> dict[str, Any] | None:
        op = self._messages.history(self._scripts, room, since, limit)
        return None if op is None else history_json(history_page(self._run(op)))

    def join(self, client_id: str, room: str) -> bool:
        return bool(self._run(self._messages.membership(self._scripts, client_id, room, True)))

    def leave(self, client_id: str, room: str) -> bool:
        return bool(self._run(self._messages.membership(self._scripts, client_id, room, False)))

    def to(self, room: str, event: str, data: Any = None, exclude: Any = None) -> None:
        self._run(self._messages.to_room(self._scripts, room, event_frame(event, data), _exclude(exclude)))

    def to_binary(self, room: str, event: str, data: bytes, exclude: Any = None) -> None:
        self._run(self._messages.to_room(self._scripts, room, binary_frame(event, data), _exclude(exclude)))

    def broadcast(self, event: str, data: Any = None, exclude: Any = None) -> None:
        self._run(self._messages.to_everyone(event_frame(event, data), _exclude(exclude)))

    def to_id(self, client_id: str, event: str, data: Any = None) -> bool:
        frame = event_frame(event, data)
        return bool(self._run(self._messages.to_client(self._scripts, client_id, frame)))

    def disconnect(self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = "") -> bool:
        return bool(self._run(self._messages.disconnect(self._scripts, client_id, code, reason)))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SyncEmitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
