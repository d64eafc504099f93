"""What a handler receives: the client, the message, and actions on both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import TYPE_CHECKING, Any

from stelar_core.errors import ConnectionRefused
from stelar_core.protocol import DisconnectCode, ErrorCode
from stelar_core.values import ClientInfo

if TYPE_CHECKING:
    from stelar_core.hub.hub import Hub
    from stelar_core.hub.session import Session
    from stelar_core.transports.base import HttpRequest


class Context:
    """``ctx`` in handlers, middleware and connection callbacks.

    ``event`` and ``data`` describe the message being handled (``data`` is decoded JSON, or
    ``bytes`` for a binary event; for ``on_disconnect`` it is ``{"code": ..., "reason": ...}``).
    """

    __slots__ = ("_hub", "_session", "data", "event")

    def __init__(self, hub: Hub, session: Session, event: str = "", data: Any = None) -> None:
        self._hub = hub
        self._session = session
        self.event = event
        self.data = data

    # ------------------------------------------------------------------ the client

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def protocol(self) -> str:
        return self._session.protocol

    @property
    def remote_address(self) -> str:
        return self._session.remote_address

    @property
    def req(self) -> HttpRequest | None:
        """The HTTP request that opened a WebSocket connection; ``None`` for other transports."""
        return self._session.request

    @property
    def peer_certificate(self) -> Mapping[str, Any] | None:
        """The client certificate the connection's TLS handshake verified (mTLS), as
        ``ssl.SSLSocket.getpeercert()`` gives it: ``subject``, ``subjectAltName``,
        ``serialNumber``, ``notAfter``...; ``None`` without one (or without TLS)."""
        return self._session.connection.peer_certificate

    @property
    def auth(self) -> dict[str, Any]:
        """What the client sent as ``auth`` in its connect frame."""
        return self._session.auth

    @property
    def rooms(self) -> Set[str]:
        return frozenset(self._session.rooms)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._session.metadata

    @property
    def connected(self) -> bool:
        return self._session.is_open

    def set_metadata(self, key: str, value: Any) -> None:
        self._session.metadata[key] = value

    def get_metadata(self, key: str, default: Any = None) -> Any:
        return self._session.metadata.get(key, default)

    def info(self) -> ClientInfo:
        return self._hub.client_info(self._session)

    # ------------------------------------------------------------------ sending

    def emit(self, event: str, data: Any = None) -> None:
        """Send an event to this client."""
        self._hub.send_event(self._session, event, data)

    def emit_binary(self, event: str, data: bytes) -> None:
        self._hub.send_binary(self._session, event, data)

    def broadcast(self, event: str, data: Any = None, *, include_self: bool = False) -> None:
        """Send to every client except this one (unless ``include_self``)."""
        self._hub.broadcast(event, data, exclude=None if include_self else self._session.id)

    def broadcast_binary(self, event: str, data: bytes, *, include_self: bool = False) -> None:
        self._hub.broadcast_binary(event, data, exclude=None if include_self else self._session.id)

    def to(self, room: str, event: str, data: Any = None, exclude: str | Iterable[str] | None = None) -> None:
        """Send to the members of ``room`` (this client included if it is one, unless excluded)."""
        self._hub.to_room(room, event, data, exclude=exclude)

    def to_binary(
        self, room: str, event: str, data: bytes, exclude: str | Iterable[str] | None = None
    ) -> None:
        self._hub.to_room_binary(room, event, data, exclude=exclude)

    def to_id(self, client_id: str, event: str, data: Any = None) -> None:
        self._hub.to_id(client_id, event, data)

    async def request(self, event: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Ask this client (its ``on_ack(event)`` handler) and return its answer."""
        return await self._hub.request(self._session, event, data, timeout=timeout)

    # ------------------------------------------------------------------ rooms

    def join_room(self, room: str) -> bool:
        """Put this client in ``room``; False if a limit or a hook refused (the hooks are told)."""
        return self._hub.join_room(self._session, room) is None

    def leave_room(self, room: str) -> bool:
        return self._hub.leave_room(self._session, room) is None

    def get_clients(self, room: str | None = None) -> list[ClientInfo]:
        return self._hub.get_clients(room)

    # ------------------------------------------------------------------ connection

    def reject(self, reason: str, code: str = ErrorCode.UNAUTHORIZED) -> None:
        """In middleware: refuse the connection; the client gets an ``error`` frame with ``reason``."""
        raise ConnectionRefused(code, reason, DisconnectCode.POLICY_VIOLATION)

    def disconnect(self, code: int = DisconnectCode.NORMAL, reason: str = "") -> None:
        self._hub.close_session(self._session, code, reason)

    def __repr__(self) -> str:
        return f"<Context id={self.id!r} event={self.event!r} protocol={self.protocol!r}>"
