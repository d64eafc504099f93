"""Names of the keys and channels of one cluster (all under its ``prefix``).

Keys (``P`` is the prefix, ``N`` a node ID):

* ``P:nodes``: sorted set, node -> the time (ms, Redis clock) its registration expires.
* ``P:dir``: hash, client ID -> node (``to_id`` and requests go to that node only).
* ``P:node:N:info``: hash, client ID -> msgpack ``[protocol, address, rooms, metadata]``.
* ``P:node:N:rooms``: set of the rooms with a member on N; ``P:node:N:room:R``: their members.
* ``P:node:N:presence:R``: hash, presence key -> its state (JSON) in presence room R on N;
  ``P:node:N:prooms``: the presence rooms N has written.
* ``P:node:N:stats``: N's last published statistics (msgpack); ``P:node:N:ips``: IP -> count.
* ``P:rl:SCOPE:CLIENT``: a shared rate-limit bucket (GCRA theoretical arrival time, µs).
* ``P:session:ID:DIGEST``: a closed session its client may resume on any node (msgpack), for
  ``recovery_window``; DIGEST is a digest of its resume token.
* ``P:history:R``: room R's history, a stream whose entry IDs are ``0-OFFSET`` (one field, the
  publication frame); ``P:history:R:meta``: hash of its ``epoch`` and last ``offset``.

Channels: ``P:all`` (broadcasts), ``P:room:R`` (subscribed only while N has a member of R) and
``P:to:N`` (one node: ``to_id``, requests and their answers, disconnects, liveness probes).
The Lua scripts build node key names from the same pattern (``scripts.py``).

On a Redis Cluster (``partitions`` given) a script may only touch keys of one slot, and a
sharded channel (``SPUBLISH``/``SSUBSCRIBE``) lives on the shard of its slot, so names carry hash
tags (docs/scaling.md, "Redis Cluster"):

* The cluster's state (``P`` above: nodes, directory, node keys, ``P:to:N``, ``P:all``) is
  ``{P}``: one slot, because the node scripts read and sweep all of it in one call.
* A room's channel and history are ``{P:pK}:room:R``, ``{P:pK}:history:R`` (and ``:meta``), K
  = CRC32(R) mod ``partitions``: the history script stores and publishes in one slot, and room
  traffic spreads over ``partitions`` slots, so over every shard.
* Rate-limit buckets and sessions are one key each: untagged, they spread over every slot.
"""

from __future__ import annotations

import zlib

# The field of a node's ips hash that counts all its connections (no IP is spelled "*"; the
# admission script in scripts.py uses it for a cluster-wide max_connections).
ALL_IPS = "*"


class Keys:
    __slots__ = ("all", "dir", "name", "nodes", "partitions", "prefix", "publish")

    def __init__(self, prefix: str, partitions: int | None = None) -> None:
        self.name = prefix
        self.partitions = partitions
        # The key prefix of the cluster's state; braced on a Redis Cluster (one slot).
        self.prefix = prefix if partitions is None else f"{{{prefix}}}"
        self.publish = "PUBLISH" if partitions is None else "SPUBLISH"
        self.nodes = f"{self.prefix}:nodes"
        self.dir = f"{self.prefix}:dir"
        self.all = f"{self.prefix}:all"

    def partition(self, room: str) -> int:
        """The partition of ``room`` on a Redis Cluster (the same on every node and emitter)."""
        assert self.partitions is not None
        return zlib.crc32(room.encode()) % self.partitions

    def _room_prefix(self, room: str) -> str:
        if self.partitions is None:
            return self.prefix
        return f"{{{self.name}:p{self.partition(room)}}}"

    def room_channel(self, room: str) -> str:
        return f"{self._room_prefix(room)}:room:{room}"

    def node_channel(self, node: str) -> str:
        return f"{self.prefix}:to:{node}"

    def node_key(self, node: str, what: str) -> str:
        return f"{self.prefix}:node:{node}:{what}"

    def room_members(self, node: str, room: str) -> str:
        return f"{self.prefix}:node:{node}:room:{room}"

    def history(self, room: str) -> str:
        return f"{self._room_prefix(room)}:history:{room}"

    def history_meta(self, room: str) -> str:
        return f"{self.history(room)}:meta"

    def session(self, session_id: str, token_digest: str) -> str:
        return f"{self.name}:session:{session_id}:{token_digest}"

    def rate_limit(self, scope: str, client_id: str) -> str:
        return f"{self.name}:rl:{scope}:{client_id}"
