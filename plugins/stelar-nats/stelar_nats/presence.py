"""Presence across nodes on NATS: each node keeps its own members of each presence room, and a
read asks every live node for theirs (as the cluster-wide reads do, broker.py).

Nothing is stored in NATS: a node that dies takes its members with it the moment it stops
answering (and out of the node table after ``node_timeout``), and what a read returns is every
node's view as it is now. The merge keeps, for a key present on several nodes (one user, two
tabs on two nodes), the state with the latest stamp.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from stelar_nats.envelope import EnvelopeError

Latest = dict[str, tuple[float, Any]]


class NodePresence:
    """The broker's ``presence`` (a ``PresenceStore``)."""

    def __init__(
        self,
        gather: Callable[[str, str], Awaitable[list[Any]]],
        invalid: Callable[[EnvelopeError], None],
    ) -> None:
        self._gather = gather
        self._invalid = invalid
        # This node's members by room, then key: (stamp, state). The hub writes only its own
        # members and removes them when they go, so this is bounded as they are.
        self._rooms: dict[str, Latest] = {}

    def write(self, room: str, key: str, state: Any, stamp: float) -> None:
        self._rooms.setdefault(room, {})[key] = (stamp, state)

    def remove(self, room: str, key: str) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.pop(key, None)
            if not members:
                del self._rooms[room]

    def local(self, room: str) -> dict[str, list[Any]]:
        """This node's part of a read (JSON: ``{key: [stamp, state]}``)."""
        return {key: [stamp, state] for key, (stamp, state) in self._rooms.get(room, {}).items()}

    async def read(self, room: str) -> Latest:
        latest: Latest = {}
        for answer in await self._gather("presence", room):
            try:
                merge(latest, answer)
            except EnvelopeError as exc:
                self._invalid(exc)
        return latest


def merge(latest: Latest, answer: Any) -> None:
    """Add one node's ``answer`` to ``latest``, the latest stamp winning; EnvelopeError (and
    nothing added) when it is not ``{key: [stamp, state]}``."""
    if not isinstance(answer, dict):
        raise EnvelopeError(f"a node's presence is {type(answer).__name__}, not an object")
    entries: Latest = {}
    for key, entry in answer.items():
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int | float)):
            raise EnvelopeError(f"a node's presence entry {key!r} is {entry!r}, not [stamp, state]")
        if isinstance(entry[0], bool):
            raise EnvelopeError(f"a node's presence entry {key!r} has no stamp")
        entries[key] = (float(entry[0]), entry[1])
    for key, (stamp, state) in entries.items():
        if key not in latest or latest[key][0] <= stamp:
            latest[key] = (stamp, state)
