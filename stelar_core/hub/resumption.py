"""Sessions a client can resume: kept ``recovery_window`` seconds after their connection closed.

A resumable session's welcome carries a secret token; a client that reconnects sends its session
ID and that token in its ``connect`` frame and gets its session back, on the same ID: metadata,
the rooms without history (it rejoins those with history from its positions), the count of its
events and requests already handled (it resends only the rest) and the answers to its last
requests (it asks again for those it did not get). At most ``max_resumable_sessions`` are kept;
past it the oldest is forgotten as if it expired (``on_session_expired``).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from stelar_core.clock import Clock
from stelar_core.errors import ProtocolError
from stelar_core.hub.hooks import Hook
from stelar_core.hub.session import Session
from stelar_core.protocol import DisconnectCode, ErrorCode
from stelar_core.protocol.frames import MAX_ACK_ID
from stelar_core.providers import SessionRecord, SessionStore
from stelar_core.transports.base import HttpRequest

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices

MAX_ID_LENGTH = 256
RESUMABLE_CLOSES = frozenset(
    {DisconnectCode.ABNORMAL, DisconnectCode.GOING_AWAY, DisconnectCode.SERVER_ERROR}
)


class Detached:
    """What a kept session has instead of its closed connection: the connection's objects
    (protocol, transport, buffers) are let go, so a table of kept sessions costs little memory
    and little garbage-collector time."""

    __slots__ = ("protocol", "remote_address")
    request: HttpRequest | None = None
    peer_certificate: Mapping[str, Any] | None = None

    def __init__(self, protocol: str, remote_address: str) -> None:
        self.protocol = protocol
        self.remote_address = remote_address

    def send(self, frame: bytes) -> None:
        """Nothing goes to a closed connection."""

    def close(self, code: int, reason: str) -> None:
        """Closed already."""

    def pause_reading(self) -> None:
        """Nothing is read."""

    def resume_reading(self) -> None:
        """Nothing is read."""


class Kept:
    """A closed session waiting for its client, and the rooms it was in."""

    __slots__ = ("expires", "rooms", "session")

    def __init__(self, session: Session, rooms: frozenset[str], expires: float) -> None:
        self.session = session
        self.rooms = rooms
        self.expires = expires


def new_token() -> str:
    return secrets.token_urlsafe(18)


def read_resume(value: Any, max_waiting: int) -> tuple[str, str, list[int]] | None:
    """The ``resume`` block of a connect frame: ``{"id", "token", "waiting": [ack ids]}``, or
    None when absent. ``ProtocolError(invalid_frame)`` names what is wrong with a bad one."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, 'resume must be {"id": ..., "token": ..., "waiting": [...]}'
        )
    session_id, token, waiting = value.get("id"), value.get("token"), value.get("waiting", [])
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_ID_LENGTH:
        raise ProtocolError(ErrorCode.INVALID_FRAME, f"resume.id must be 1..{MAX_ID_LENGTH} characters")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_ID_LENGTH:
        raise ProtocolError(ErrorCode.INVALID_FRAME, f"resume.token must be 1..{MAX_ID_LENGTH} characters")
    if (
        not isinstance(waiting, list)
        or len(waiting) > max_waiting
        or not all(type(ack_id) is int and 0 <= ack_id <= MAX_ACK_ID for ack_id in waiting)
    ):
        raise ProtocolError(
            ErrorCode.INVALID_FRAME,
            f"resume.waiting must be at most {max_waiting} ack ids in 0..{MAX_ACK_ID}",
        )
    return session_id, token, waiting


class Resumption:
    """This node's kept sessions and, when the broker shares them (``broker.sessions``), the
    other nodes': a session is kept here (where late answers still reach it) and in the store,
    so its client may come back on any node."""

    __slots__ = ("_clock", "_config", "_counters", "_hooks", "_kept", "_log", "_store")

    def __init__(self, services: HubServices, clock: Clock, store: Callable[[], SessionStore | None]) -> None:
        self._config = services.config
        self._counters = services.counters
        self._hooks = services.hooks
        self._log = services.log
        self._clock = clock
        self._store = store
        self._kept: OrderedDict[str, Kept] = OrderedDict()

    @property
    def shared(self) -> bool:
        return self._store() is not None

    def __len__(self) -> int:
        return len(self._kept)

    def opened(self, session: Session) -> str | None:
        """A session opens: resumable (its token) when the server keeps sessions."""
        if self._config().recovery_window <= 0:
            return None
        if session.answers is None:
            session.answers = {}
        session.resume_token = new_token()
        return session.resume_token

    def keep(self, session: Session, rooms: frozenset[str], code: int) -> None:
        """``session`` closed: keep it for its client (the oldest goes past the limit), unless it
        ended by someone's choice (a goodbye, a kick, a refusal): only a dropped connection, a
        heartbeat timeout or a server going away is worth coming back from."""
        config = self._config()
        if code not in RESUMABLE_CLOSES or session.resume_token is None or config.recovery_window <= 0:
            return
        session.connection = Detached(session.protocol, session.remote_address)
        kept = self._kept
        kept.pop(session.id, None)
        while len(kept) >= config.max_resumable_sessions:
            self._expired(kept.popitem(last=False)[1])
        kept[session.id] = Kept(session, rooms, self._clock.now() + config.recovery_window)
        store = self._store()
        if store is not None:
            record = SessionRecord(
                session.id, session.metadata, rooms, session.received, dict(session.answers or {})
            )
            store.keep(record, session.resume_token, config.recovery_window)

    def take(self, session_id: str, token: str) -> Kept | None:
        """The kept session ``session_id`` if ``token`` is its own and it has not expired."""
        found = self._kept.get(session_id)
        if found is None or found.session.resume_token is None:
            return None
        if not hmac.compare_digest(found.session.resume_token.encode(), token.encode()):
            return None
        del self._kept[session_id]
        store = self._store()
        if store is not None:
            store.forget(session_id, token)
        if found.expires < self._clock.now():
            self._expired(found)
            return None
        return found

    async def take_shared(self, session_id: str, token: str) -> SessionRecord | None:
        """The session ``session_id`` kept by another node, if ``token`` is its own."""
        store = self._store()
        if store is None:
            return None
        try:
            return await store.take(session_id, token)
        except Exception as exc:  # the store's failure: a new session, and the server goes on
            self._log.warning("the shared session store could not be read: %s", exc)
            return None

    def sweep(self) -> None:
        """Forget the sessions whose window has passed (on the heartbeat's beat)."""
        now = self._clock.now()
        kept = self._kept
        while kept:
            oldest = next(iter(kept.values()))
            if oldest.expires >= now:
                break
            del kept[oldest.session.id]
            self._expired(oldest)

    def _expired(self, kept: Kept) -> None:
        self._counters.other["sessions_expired"] += 1
        session = kept.session
        self._hooks.notify(Hook.SESSION_EXPIRED, client_id=session.id, metadata=dict(session.metadata))
