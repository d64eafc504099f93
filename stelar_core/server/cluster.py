"""``server.cluster``: reads and actions over every node that shares this server's broker.

With a broker that joins nodes (:class:`~stelar_core.providers.ClusterBroker`, e.g.
``broker="redis"``) the answers come from the shared state the nodes keep in it; with the local
broker the cluster is this one node, so the same code runs on one process and on many.
The plain ``server.get_clients()`` and friends stay synchronous and answer for this node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stelar_core.protocol import DisconnectCode
from stelar_core.providers import ClusterBroker, PresenceStore
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

    async def disconnect(self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = "") -> bool:
        """Disconnect ``client_id`` wherever it is connected; whether a node had it."""
        if self._server.disconnect(client_id, code, reason):
            return True
        broker = self._broker
        return False if broker is None else await broker.disconnect(client_id, code, reason)
