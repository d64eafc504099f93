"""Sending to clients: the one implementation behind ``StelarServer``, the ``ServerView``
plugins get, and ``ctx``.

Each of those classes derives from :class:`Emitter` (``ctx`` also, with its own defaults:
``ctx.broadcast`` leaves the sender out) and says where its hub is; none repeats a send. Every
send encodes its frame once and goes through the broker (``fanout.py``), so with a shared broker
it reaches clients on every node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stelar_core.errors import NotConnected
from stelar_core.hub.fanout import Exclude, encode_binary, encode_event
from stelar_core.protocol import DisconnectCode
from stelar_core.providers import ClusterBroker

if TYPE_CHECKING:
    from stelar_core.hub.hub import Hub


class Emitter:
    """Broadcasts, rooms and single clients, JSON or binary."""

    __slots__ = ()

    def _target(self) -> Hub:
        """The hub these sends go through: each subclass says where its own is."""
        raise NotImplementedError

    def broadcast(self, event: str, data: Any = None, exclude: Exclude = None) -> None:
        """Send to every connected client (across nodes, with a shared broker)."""
        self._target().fanout.to_many(encode_event, event, data, None, exclude)

    def broadcast_binary(self, event: str, data: bytes, exclude: Exclude = None) -> None:
        self._target().fanout.to_many(encode_binary, event, data, None, exclude)

    def to(self, room: str, event: str, data: Any = None, exclude: Exclude = None) -> None:
        """Send to the members of ``room``."""
        self._target().fanout.to_many(encode_event, event, data, room, exclude)

    def to_binary(self, room: str, event: str, data: bytes, exclude: Exclude = None) -> None:
        self._target().fanout.to_many(encode_binary, event, data, room, exclude)

    def to_id(self, client_id: str, event: str, data: Any = None) -> None:
        """Send to one client by ID (a dictionary lookup, whatever the number of clients)."""
        self._target().fanout.to_one(client_id, encode_event(event, data))

    def to_id_binary(self, client_id: str, event: str, data: bytes) -> None:
        self._target().fanout.to_one(client_id, encode_binary(event, data))


class ServerEmitter(Emitter):
    """An emitter acting on any client by ID: the server's and the plugins' view of it."""

    __slots__ = ()

    async def request(
        self, client_id: str, event: str, data: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Ask a client (its ``on_ack(event)`` handler) and return its answer.

        Raises ``AckError`` when it answers with an error, ``AckTimeout`` after ``timeout``
        (default ``ack_timeout``), ``NotConnected`` if it is not (or no longer) connected. With
        a broker joining nodes, a client connected to another node is asked through it."""
        hub = self._target()
        session = hub.session(client_id)
        if session is not None:
            return await hub.requests.ask(session, event, data, timeout=timeout)
        if isinstance(hub.broker, ClusterBroker):
            return await hub.broker.request(client_id, event, data, timeout or hub.config.ack_timeout)
        raise NotConnected(f"no client {client_id!r} is connected here")

    def disconnect(self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = "") -> bool:
        """Disconnect a client of this node; whether it was here (``await
        server.cluster.disconnect(...)`` reaches every node)."""
        return self._target().disconnect(client_id, code, reason)
