"""The object every server hands plugins as ``server`` (in hooks and HTTP routes).

It implements :class:`~stelar_core.plugins.view.ServerView`, the narrow Protocol plugins are
typed against: reads of the server, and the sends of
:class:`~stelar_core.hub.emitter.ServerEmitter` (shared with ``StelarServer`` itself), not the
hub, the plugin manager, handler registration or ``update_config``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stelar_core.asyncapi import document
from stelar_core.config import ServerConfig
from stelar_core.hub.emitter import ServerEmitter
from stelar_core.values import ClientInfo, Stats, Tapped

if TYPE_CHECKING:
    from stelar_core.hub.hub import Hub
    from stelar_core.server.cluster import Cluster
    from stelar_core.server.server import StelarServer


class PluginView(ServerEmitter):
    __slots__ = ("_server",)

    def __init__(self, server: StelarServer) -> None:
        self._server = server

    def _target(self) -> Hub:
        return self._server.hub

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

    def presence(self, room: str) -> dict[str, Any]:
        return self._server.presence(room)

    def get_presence_count(self, room: str) -> int:
        return self._server.get_presence_count(room)

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

    def tap(self, listener: Callable[[Tapped], None]) -> Callable[[], None]:
        return self._server.hub.taps.add(listener)

    def count(self, counter: str, amount: int = 1) -> None:
        self._server.hub.count(counter, amount)

    def __repr__(self) -> str:
        return f"<ServerView of {self._server!r}>"
