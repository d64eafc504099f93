"""Who is here: every session of the hub (in its handshake or open), the open ones by client
ID, how many each transport carries, and the membership watcher told of each change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from stelar_core.config import ServerConfig
from stelar_core.hub.rooms import RoomTable
from stelar_core.hub.session import Session
from stelar_core.values import ClientInfo


class Directory:
    __slots__ = ("_config", "_rooms", "all", "by_transport", "open")

    def __init__(self, config: Callable[[], ServerConfig], rooms: RoomTable) -> None:
        self._config = config
        self._rooms = rooms
        self.all: set[Session] = set()
        self.open: dict[str, Session] = {}
        self.by_transport: Counter[str] = Counter()

    def opened(self, session: Session) -> None:
        """``session`` finished its handshake: it counts, and rate limits key on it."""
        key = self._config().rate_limit_key
        if key is not None and session.metadata.get(key) is not None:
            session.rate_key = f"{key}={session.metadata[key]}"
        self.open[session.id] = session
        self.by_transport[session.protocol] += 1
        if self._rooms.watcher is not None:
            self._rooms.watcher.client_opened(session.info())

    def metadata_changed(self, session: Session) -> None:
        """An open client's metadata changed (``ctx.set_metadata``): the watcher is told, so
        cluster-wide reads show it as it is now."""
        if self._rooms.watcher is not None and session.id in self.open:
            self._rooms.watcher.client_updated(session.info())

    def forget(self, session: Session, was_open: bool) -> None:
        """``session`` is gone: out of every table, and out of its rooms (it had left them)."""
        self.all.discard(session)
        if not was_open:
            return
        del self.open[session.id]
        self.by_transport[session.protocol] -= 1
        self._rooms.remove_everywhere(session)
        if self._rooms.watcher is not None:
            self._rooms.watcher.client_closed(session.id)

    def clients(self, room: str | None = None) -> list[ClientInfo]:
        sessions = self.open.values() if room is None else self._rooms.members(room)
        return [session.info() for session in sessions]
