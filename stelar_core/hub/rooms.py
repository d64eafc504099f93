"""Room membership, both ways: room -> members and (on the session) member -> rooms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from stelar_core.config import ServerConfig
from stelar_core.hub.hooks import Hook, HookRunner
from stelar_core.hub.taps import Taps
from stelar_core.protocol import ErrorCode

if TYPE_CHECKING:
    from stelar_core.hub.presence import Presence
    from stelar_core.hub.session import Session
    from stelar_core.providers import MembershipWatcher

# Why a join or leave was refused: (error code, message).
Refusal = tuple[str, str]


class RoomTable:
    """A room exists while it has members; the last one leaving removes it. ``watcher`` (a
    cluster broker) is told of every change."""

    __slots__ = ("_rooms", "presence", "watcher")

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, Session]] = {}
        self.watcher: MembershipWatcher | None = None
        self.presence: Presence | None = None

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
        members = self._rooms.get(room)
        first = members is None
        if members is None:
            members = self._rooms[room] = {}
        members[session.id] = session
        session.rooms.add(room)
        if self.watcher is not None:
            self.watcher.room_joined(session.id, room, first)
        if self.presence is not None:
            self.presence.joined(session, room)

    def remove(self, room: str, session: Session) -> bool:
        members = self._rooms.get(room)
        if members is None or members.pop(session.id, None) is None:
            return False
        session.rooms.discard(room)
        if not members:
            del self._rooms[room]
        if self.watcher is not None:
            self.watcher.room_left(session.id, room, not members)
        if self.presence is not None:
            self.presence.left(session, room)
        return True

    def remove_everywhere(self, session: Session) -> None:
        for room in tuple(session.rooms):
            self.remove(room, session)


class Rooms:
    """Joining and leaving with the room limits and the join/leave veto hooks."""

    __slots__ = ("_config", "_hooks", "_taps", "table")

    def __init__(self, config: Callable[[], ServerConfig], hooks: HookRunner, taps: Taps) -> None:
        self._config = config
        self._hooks = hooks
        self._taps = taps
        self.table = RoomTable()

    def join(self, session: Session, room: str) -> Refusal | None:
        """Put ``session`` in ``room``; returns ``(code, message)`` when refused."""
        config = self._config()
        if not session.is_open:
            return ErrorCode.NOT_CONNECTED, "client is not connected"
        if room in session.rooms:
            return None
        if not room or len(room) > config.max_event_name_length:
            return ErrorCode.INVALID_EVENT, f"room name must be 1..{config.max_event_name_length} characters"
        if not self._allowed(Hook.CLIENT_JOIN_ROOM, session, room):
            return ErrorCode.JOIN_REJECTED, f"joining room {room!r} was rejected"
        if len(session.rooms) >= config.max_rooms_per_client:
            self._hooks.notify(
                Hook.MAX_ROOMS_PER_CLIENT_REACHED,
                client_id=session.id,
                room=room,
                current_rooms=len(session.rooms),
                max_rooms=config.max_rooms_per_client,
            )
            return (
                ErrorCode.MAX_ROOMS_PER_CLIENT,
                f"a client may be in at most {config.max_rooms_per_client} rooms",
            )
        table = self.table
        full = None if table.presence is None else table.presence.refusal(session, room)
        if full is not None:
            return full
        if room not in table and len(table) >= config.max_rooms:
            self._hooks.notify(
                Hook.MAX_ROOMS_REACHED,
                client_id=session.id,
                room=room,
                total_rooms=len(table),
                max_rooms=config.max_rooms,
            )
            return ErrorCode.MAX_ROOMS, f"the server holds at most {config.max_rooms} rooms"
        table.add(room, session)
        if self._taps.listeners:
            self._taps.emit("join", room=room, client_id=session.id)
        return None

    def leave(self, session: Session, room: str) -> Refusal | None:
        if room not in session.rooms:
            return ErrorCode.NOT_IN_ROOM, f"not in room {room!r}"
        if not self._allowed(Hook.CLIENT_LEAVE_ROOM, session, room):
            return ErrorCode.LEAVE_REJECTED, f"leaving room {room!r} was rejected"
        self.table.remove(room, session)
        if self._taps.listeners:
            self._taps.emit("leave", room=room, client_id=session.id)
        return None

    def _allowed(self, hook: str, session: Session, room: str) -> bool:
        return self._hooks.allows(hook, client_id=session.id, room=room, metadata=session.metadata)
