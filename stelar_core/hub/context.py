"""What a handler receives: the client, the message, and actions on both."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import TYPE_CHECKING, Any

from stelar_core.errors import ConnectionRefused
from stelar_core.hub.emitter import Emitter
from stelar_core.hub.fanout import Exclude, encode_binary, encode_event
from stelar_core.protocol import DisconnectCode, ErrorCode
from stelar_core.values import ClientInfo

if TYPE_CHECKING:
    from stelar_core.hub.hub import Hub
    from stelar_core.hub.session import Session
    from stelar_core.transports.base import HttpRequest


class Context(Emitter):
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
    def presence_key(self) -> str:
        """Whom this connection counts as in presence rooms: its client ID unless set (in
        middleware or ``on_connection``, e.g. ``ctx.presence_key = user_id``): a user's
        connections are then one member."""
        return self._session.presence_key

    @presence_key.setter
    def presence_key(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError(f"a presence key is a non-empty string, got {key!r}")
        self._session.presence_key = key

    @property
    def presence(self) -> ClientPresence:
        """``ctx.presence.update(room, state)``: this member's state in a presence room."""
        return ClientPresence(self._hub, self._session)

    @property
    def recovered(self) -> bool:
        """Whether this connection resumed an earlier session of its client (same ID, metadata
        and rooms; docs/delivery.md), rather than starting a new one."""
        return self._session.recovered

    @property
    def connected(self) -> bool:
        return self._session.is_open

    def set_metadata(self, key: str, value: Any) -> None:
        """Set one metadata value; on an open connection, cluster-wide reads show it at once
        (mutating ``ctx.metadata`` directly changes this node's view only)."""
        self._session.metadata[key] = value
        self._hub.directory.metadata_changed(self._session)

    def get_metadata(self, key: str, default: Any = None) -> Any:
        return self._session.metadata.get(key, default)

    def _target(self) -> Hub:
        return self._hub

    def info(self) -> ClientInfo:
        return self._session.info()

    # ------------------------------------------------------------------ sending

    # to, to_binary, to_id, to_id_binary: the Emitter's (``to`` reaches this client too when
    # it is a member, unless excluded).

    def emit(self, event: str, data: Any = None) -> None:
        """Send an event to this client."""
        self._hub.outbox.send(self._session, encode_event(event, data))

    def emit_binary(self, event: str, data: bytes) -> None:
        self._hub.outbox.send(self._session, encode_binary(event, data))

    def broadcast(
        self, event: str, data: Any = None, exclude: Exclude = None, *, include_self: bool = False
    ) -> None:
        """Send to every client except this one (unless ``include_self``) and ``exclude``."""
        super().broadcast(event, data, self._excluding_self(exclude, include_self))

    def broadcast_binary(
        self, event: str, data: bytes, exclude: Exclude = None, *, include_self: bool = False
    ) -> None:
        super().broadcast_binary(event, data, self._excluding_self(exclude, include_self))

    def _excluding_self(self, exclude: Exclude, include_self: bool) -> Exclude:
        if include_self:
            return exclude
        if exclude is None:
            return self._session.id
        return {self._session.id, *((exclude,) if isinstance(exclude, str) else exclude)}

    async def request(self, event: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Ask this client (its ``on_ack(event)`` handler) and return its answer."""
        return await self._hub.requests.ask(self._session, event, data, timeout=timeout)

    # ------------------------------------------------------------------ rooms

    def join_room(self, room: str) -> bool:
        """Put this client in ``room``; False if a limit or a hook refused (the hooks are told)."""
        return self._hub.rooms.join(self._session, room) is None

    def leave_room(self, room: str) -> bool:
        return self._hub.rooms.leave(self._session, room) is None

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


class ClientPresence:
    """A connection's presence, as ``ctx.presence``."""

    __slots__ = ("_hub", "_session")

    def __init__(self, hub: Hub, session: Session) -> None:
        self._hub = hub
        self._session = session

    def update(self, room: str, state: Any) -> None:
        """Set this member's state in ``room``; ``ValueError`` says why it cannot be."""
        refusal = self._hub.presence.update(self._session, room, state)
        if refusal is not None:
            raise ValueError(refusal)
