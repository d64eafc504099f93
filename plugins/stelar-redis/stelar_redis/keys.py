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
"""

from __future__ import annotations


class Keys:
    __slots__ = ("all", "dir", "nodes", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes = f"{prefix}:nodes"
        self.dir = f"{prefix}:dir"
        self.all = f"{prefix}:all"

    def room_channel(self, room: str) -> str:
        return f"{self.prefix}:room:{room}"

    def node_channel(self, node: str) -> str:
        return f"{self.prefix}:to:{node}"

    def node_key(self, node: str, what: str) -> str:
        return f"{self.prefix}:node:{node}:{what}"

    def room_members(self, node: str, room: str) -> str:
        return f"{self.prefix}:node:{node}:room:{room}"

    def history(self, room: str) -> str:
        return f"{self.prefix}:history:{room}"

    def history_meta(self, room: str) -> str:
        return f"{self.prefix}:history:{room}:meta"

    def session(self, session_id: str, token_digest: str) -> str:
        return f"{self.prefix}:session:{session_id}:{token_digest}"

    def rate_limit(self, scope: str, client_id: str) -> str:
        return f"{self.prefix}:rl:{scope}:{client_id}"
