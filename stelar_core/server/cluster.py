"""``server.cluster``: reads and actions over every node that shares this server's broker.

With a broker that joins nodes (:class:`~stelar_core.providers.ClusterBroker`, e.g.
``broker="redis"``) the answers come from the shared state the nodes keep in it; with the local
broker the cluster is this one node, so the same code runs on one process and on many.
The plain ``server.get_clients()`` and friends stay synchronous and answer for this node."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from stelar_core.hub.fanout import encode_binary, encode_event
from stelar_core.hub.recovery import history_json
from stelar_core.protocol import DisconnectCode
from stelar_core.providers import ClusterBroker, HistoryStore, PresenceStore
from stelar_core.values import ClientInfo, ClusterStats, cluster_stats

if TYPE_CHECKING:
    from stelar_core.server.server import StelarServer

LOCAL_NODE = "local"


class Cluster:
    __slots__ = ("_server",)

    def __init__(self, server: StelarServer) -> None:
        self._server = server

    @property
    def _broker(self) -> ClusterBroker | None:
        broker = self._server.hub.broker
        return broker if isinstance(broker, ClusterBroker) else None

    @property
    def node_id(self) -> str:
        """This node's ID in the cluster (``"local"`` without a shared broker)."""
        broker = self._broker
        return LOCAL_NODE if broker is None else broker.node_id

    async def get_clients(self, room: str | None = None) -> list[ClientInfo]:
        broker = self._broker
        return self._server.get_clients(room) if broker is None else await broker.clients(room)

    async def get_room_members(self, room: str) -> list[str]:
        broker = self._broker
        return self._server.get_room_members(room) if broker is None else await broker.room_members(room)

    async def get_rooms(self) -> list[str]:
        broker = self._broker
        return self._server.get_rooms() if broker is None else await broker.rooms()

    async def presence(self, room: str) -> dict[str, Any]:
        """Presence room ``room``'s members on every live node, by key, with the latest state
        (read from the broker's shared presence; this node's own view without one)."""
        store = getattr(self._server.hub.broker, "presence", None)
        if not isinstance(store, PresenceStore):
            return self._server.presence(room)
        return {key: state for key, (_, state) in (await store.read(room)).items()}

    async def get_stats(self) -> ClusterStats:
        broker = self._broker
        if broker is None:
            stats = self._server.get_stats()
            return cluster_stats({LOCAL_NODE: stats.to_dict()}, stats.total_rooms)
        return cluster_stats(await broker.node_stats(), len(await broker.rooms()))

    async def get_client(self, client_id: str) -> ClientInfo | None:
        """The client ``client_id`` wherever it is connected; None when no live node has it."""
        session = self._server.hub.session(client_id)
        if session is not None:
            return session.info()
        broker = self._broker
        if broker is None:
            return None
        return next((info for info in await broker.clients(None) if info.id == client_id), None)

    async def to_id(self, client_id: str, event: str, data: Any = None) -> bool:
        """Send to ``client_id`` wherever it is connected; whether a node had it."""
        return await self._send(client_id, encode_event(event, data))

    async def to_id_binary(self, client_id: str, event: str, data: bytes) -> bool:
        return await self._send(client_id, encode_binary(event, data))

    async def _send(self, client_id: str, frame: bytes) -> bool:
        hub = self._server.hub
        if hub.session(client_id) is not None:
            hub.fanout.to_one(client_id, frame)
            return True
        broker = self._broker
        return False if broker is None else await broker.send(client_id, frame)

    async def join(self, client_id: str, room: str) -> bool:
        """Put ``client_id`` in ``room`` wherever it is connected, with the limits and hooks of a
        join on its node; whether a node had the client."""
        return await self._membership(client_id, room, True)

    async def leave(self, client_id: str, room: str) -> bool:
        return await self._membership(client_id, room, False)

    async def _membership(self, client_id: str, room: str, join: bool) -> bool:
        hub = self._server.hub
        if hub.session(client_id) is not None:
            (hub.join_client if join else hub.leave_client)(client_id, room)
            return True
        broker = self._broker
        return False if broker is None else await broker.membership(client_id, room, join)

    async def history(self, room: str, since: int | None = None, limit: int = 100) -> dict[str, Any] | None:
        """A page of ``room``'s history: its position and at most ``limit`` publications after
        offset ``since`` (the oldest kept, without), as the ``$history`` request answers it; None
        when the room keeps none."""
        config = self._server.config
        policy = config.rooms.for_room(room)
        store = getattr(self._server.hub.broker, "history", None)
        if policy is None or not policy.keeps_history or not isinstance(store, HistoryStore):
            return None
        limit = max(0, min(limit, config.max_recovery_replay))
        page = store.read(room, policy, 0 if since is None else since, limit)
        return history_json(await page if inspect.isawaitable(page) else page)

    async def disconnect(self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = "") -> bool:
        """Disconnect ``client_id`` wherever it is connected; whether a node had it."""
        if self._server.disconnect(client_id, code, reason):
            return True
        broker = self._broker
        return False if broker is None else await broker.disconnect(client_id, code, reason)
