"""This node's share of the cluster state: who is connected here, in which rooms, from which
IPs, mirrored into Redis.

Changes are recorded in memory at once (the hub's path does no I/O) and written to Redis in
batches, one pipeline per batch. The queue of unwritten changes is bounded: past its limit, or
when a write fails, it is dropped and the node's whole state is written again once Redis answers
(a *resync*), which is also what happens when Redis restarted empty. So what Redis holds
converges on the truth here, and nothing grows while Redis is away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
import msgpack

from stelar_core.plugin_api import ClientInfo
from stelar_redis.keys import ALL_IPS, Keys

# One write: (command, key, *arguments), as redis-py's execute_command takes it.
Op = tuple[Any, ...]


def pack_info(info: ClientInfo) -> bytes:
    packed: bytes = msgpack.packb(
        [info.protocol, info.remote_address, sorted(info.rooms), dict(info.metadata), info.connected_at],
        use_bin_type=True,
        default=repr,  # metadata an application stored that msgpack cannot carry: shown, not lost
    )
    return packed


def unpack_info(client_id: str, data: bytes) -> ClientInfo:
    # Four fields from a node older than connected_at (during a rolling upgrade).
    protocol, address, rooms, metadata, *since = msgpack.unpackb(data, raw=False, ext_hook=_refuse)
    return ClientInfo(client_id, protocol, address, frozenset(rooms), metadata, *since[:1])


def _refuse(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not accepted")


class Presence:
    """The :class:`~stelar_core.providers.MembershipWatcher` half of the Redis broker."""

    def __init__(self, keys: Keys, node_id: str, max_pending: int, changed: Callable[[], None]) -> None:
        self._keys = keys
        self._changed = changed
        self._node = node_id
        self.max_pending = max_pending
        self.clients: dict[str, ClientInfo] = {}
        self.ips: dict[str, int] = {}
        self.rooms: dict[str, set[str]] = {}
        self.pending: list[Op] = []
        # Set when the state in Redis may differ from this mirror: write it all again. (A new
        # node's first heartbeat finds it unregistered, which writes it all too.)
        self.resync_needed = False
        self._info_key = keys.node_key(node_id, "info")
        self._rooms_key = keys.node_key(node_id, "rooms")
        self._ips_key = keys.node_key(node_id, "ips")

    def _add(self, *ops: Op) -> None:
        if self.resync_needed:
            return  # the resync writes the state as it is then
        if len(self.pending) + len(ops) > self.max_pending:
            self.pending.clear()
            self.resync_needed = True
            return
        if not self.pending:
            self._changed()
        self.pending.extend(ops)

    def take(self) -> list[Op]:
        ops, self.pending = self.pending, []
        return ops

    def lost(self) -> None:
        """A write failed: what Redis holds is unknown, write it all again later."""
        self.pending.clear()
        self.resync_needed = True

    # ------------------------------------------------------------------ MembershipWatcher

    def client_opened(self, info: ClientInfo) -> None:
        self.clients[info.id] = info
        self._add(
            ("HSET", self._info_key, info.id, pack_info(info)), ("HSET", self._keys.dir, info.id, self._node)
        )

    def client_updated(self, info: ClientInfo) -> None:
        if info.id in self.clients:
            self.clients[info.id] = info
            self._add(("HSET", self._info_key, info.id, pack_info(info)))

    def client_closed(self, client_id: str) -> None:
        self.clients.pop(client_id, None)
        self._add(("HDEL", self._info_key, client_id), ("HDEL", self._keys.dir, client_id))

    def room_joined(self, client_id: str, room: str, first: bool) -> None:
        self.rooms.setdefault(room, set()).add(client_id)
        ops: list[Op] = [("SADD", self._keys.room_members(self._node, room), client_id)]
        if first:
            ops.append(("SADD", self._rooms_key, room))
        self._add(*ops, *self._info_changed(client_id, room, True))

    def room_left(self, client_id: str, room: str, last: bool) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.discard(client_id)
            if not members:
                del self.rooms[room]
        ops: list[Op] = [("SREM", self._keys.room_members(self._node, room), client_id)]
        if last:
            ops.append(("SREM", self._rooms_key, room))
        self._add(*ops, *self._info_changed(client_id, room, False))

    def _info_changed(self, client_id: str, room: str, joined: bool) -> Iterable[Op]:
        info = self.clients.get(client_id)
        if info is None:
            return ()
        rooms = info.rooms | {room} if joined else info.rooms - {room}
        info = attrs.evolve(info, rooms=rooms)
        self.clients[client_id] = info
        return (("HSET", self._info_key, client_id, pack_info(info)),)

    # ------------------------------------------------------------------ IP counts

    def set_ip_count(self, ip: str, count: int) -> None:
        """Write this node's count of ``ip`` as it is (when no reservation wrote it already),
        and its count of all connections."""
        self.record_ip_count(
            ip, count, ("HSET", self._ips_key, ip, count) if count > 0 else ("HDEL", self._ips_key, ip)
        )
        self._add(("HSET", self._ips_key, ALL_IPS, sum(self.ips.values())))

    def record_ip_count(self, ip: str, count: int, *ops: Op) -> None:
        """This node's count of ``ip`` is ``count`` now (what a resync writes); ``ops`` write
        the change (none when the admission script has written it already)."""
        if count > 0:
            self.ips[ip] = count
        else:
            self.ips.pop(ip, None)
        if ops:
            self._add(*ops)

    # ------------------------------------------------------------------ resync

    def snapshot(self) -> list[Op]:
        """Every write that recreates this node's state (after its keys were cleared)."""
        self.pending.clear()
        self.resync_needed = False
        ops: list[Op] = []
        for client_id, info in self.clients.items():
            ops.append(("HSET", self._info_key, client_id, pack_info(info)))
            ops.append(("HSET", self._keys.dir, client_id, self._node))
        for room, members in self.rooms.items():
            ops.append(("SADD", self._rooms_key, room))
            ops.append(("SADD", self._keys.room_members(self._node, room), *members))
        for ip, count in self.ips.items():
            ops.append(("HSET", self._ips_key, ip, count))
        if self.ips:
            ops.append(("HSET", self._ips_key, ALL_IPS, sum(self.ips.values())))
        return ops
