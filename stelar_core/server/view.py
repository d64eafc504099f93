"""``ServerView``: the server as plugins see it in hooks and HTTP routes.

A narrow view on purpose: what a plugin may read (configuration in force, statistics, clients,
rooms, addresses, state) and do (send, ask a client, disconnect one, log), and not the internals
(the hub, the plugin manager, handler registration, ``update_config``), so that the internals can
change without breaking plugins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stelar_core.asyncapi import document
from stelar_core.config import ServerConfig
from stelar_core.hub import ClientInfo, Stats
from stelar_core.protocol import DisconnectCode

if TYPE_CHECKING:
    from stelar_core.server.cluster import Cluster
    from stelar_core.server.server import StelarServer


class ServerView:
    __slots__ = ("_server",)

    def __init__(self, server: StelarServer) -> None:
        self._server = server

    # ------------------------------------------------------------------ reading

    @property
    def config(self) -> ServerConfig:
        """The configuration in force (``config.plugin(section)`` for a plugin's options)."""
        return self._server.config

    def get_config(self) -> dict[str, Any]:
        return self._server.get_config()

    def get_stats(self) -> Stats:
        return self._server.get_stats()

    def get_clients(self, room: str | None = None) -> list[ClientInfo]:
        return self._server.get_clients(room)

    def get_room_members(self, room: str) -> list[str]:
        return self._server.get_room_members(room)

    def get_rooms(self) -> list[str]:
        return self._server.get_rooms()

    @property
    def cluster(self) -> Cluster:
        """Reads and actions over every node sharing this server's broker (async)."""
        return self._server.cluster

    @property
    def addresses(self) -> dict[str, list[str]]:
        return self._server.addresses

    @property
    def state(self) -> str:
        return self._server.state

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def accepting(self) -> bool:
        return self._server.accepting

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI 3.0 document of the server's events and requests (``stelar_core.asyncapi``)."""
        return document(self._server)

    def logger(self, name: str) -> logging.Logger:
        """The server's logger ``name`` (``stelar.<plugin>``), which follows its ``logger`` option."""
        return self._server.hub.logger(name)

    # ------------------------------------------------------------------ acting

    def broadcast(self, event: str, data: Any = None, exclude: str | Iterable[str] | None = None) -> None:
        self._server.broadcast(event, data, exclude)

    def to(self, room: str, event: str, data: Any = None, exclude: str | Iterable[str] | None = None) -> None:
        self._server.to(room, event, data, exclude)

    def broadcast_binary(self, event: str, data: bytes, exclude: str | Iterable[str] | None = None) -> None:
        self._server.broadcast_binary(event, data, exclude)

    def to_binary(
        self, room: str, event: str, data: bytes, exclude: str | Iterable[str] | None = None
    ) -> None:
        self._server.to_binary(room, event, data, exclude)

    def to_id(self, client_id: str, event: str, data: Any = None) -> None:
        self._server.to_id(client_id, event, data)

    def to_id_binary(self, client_id: str, event: str, data: bytes) -> None:
        self._server.to_id_binary(client_id, event, data)

    async def request(
        self, client_id: str, event: str, data: Any = None, *, timeout: float | None = None
    ) -> Any:
        return await self._server.request(client_id, event, data, timeout=timeout)

    def disconnect(self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = "") -> bool:
        return self._server.disconnect(client_id, code, reason)

    def __repr__(self) -> str:
        return f"<ServerView of {self._server!r}>"
