"""The hub: sessions, rooms, dispatch, ACKs, limits and stats. It sees frames, never sockets."""

from stelar_core.hub.context import Context
from stelar_core.hub.hub import Hub
from stelar_core.values import ClientInfo, Stats

__all__ = ["ClientInfo", "Context", "Hub", "Stats"]
