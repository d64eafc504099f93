"""Room membership, both ways: room -> members and (on the session) member -> rooms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stelar_core.hub.session import Session


class RoomTable:
    """A room exists while it has members; the last one leaving removes it."""

    __slots__ = ("_rooms",)

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, Session]] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, room: object) -> bool:
        return room in self._rooms

    def names(self) -> list[str]:
        return list(self._rooms)

    def members(self, room: str) -> Iterator[Session]:
        return iter(self._rooms.get(room, {}).values())

    def member_ids(self, room: str) -> list[str]:
        return list(self._rooms.get(room, ()))

    def add(self, room: str, session: Session) -> None:
        self._rooms.setdefault(room, {})[session.id] = session
        session.rooms.add(room)

    def remove(self, room: str, session: Session) -> bool:
        members = self._rooms.get(room)
        if members is None or members.pop(session.id, None) is None:
            return False
        session.rooms.discard(room)
        if not members:
            del self._rooms[room]
        return True

    def remove_everywhere(self, session: Session) -> None:
        for room in tuple(session.rooms):
            self.remove(room, session)
