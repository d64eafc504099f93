"""``ServerView``: the server as plugins see it in hooks and HTTP routes, declared as a Protocol.

A narrow view on purpose: what a plugin may read (configuration in force, statistics, clients,
rooms, addresses, state) and do (send, ask a client, disconnect one, log), and not the internals
(the hub, the plugin manager, handler registration, ``update_config``), so that the internals can
change without breaking plugins. It is declared here, below the hub and the server, so that the
hookspecs and the hub name it without importing the server; ``stelar_core.server.view`` holds
the object every server hands out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from stelar_core.config import ServerConfig
from stelar_core.protocol import DisconnectCode
from stelar_core.values import ClientInfo, ClusterStats, Stats, Tapped

Exclude = str | Iterable[str] | None


class Sends(Protocol):
    """Sending to clients, the same on ``StelarServer`` and ``ServerView``."""

    def broadcast(self, event: str, data: Any = None, exclude: Exclude = None) -> None: ...

    def broadcast_binary(self, event: str, data: bytes, exclude: Exclude = None) -> None: ...

    def to(self, room: str, event: str, data: Any = None, exclude: Exclude = None) -> None: ...

    def to_binary(self, room: str, event: str, data: bytes, exclude: Exclude = None) -> None: ...

    def to_id(self, client_id: str, event: str, data: Any = None) -> None: ...

    def to_id_binary(self, client_id: str, event: str, data: bytes) -> None: ...

    async def request(
        self, client_id: str, event: str, data: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Ask ``client_id`` (on any node sharing the broker) and return its answer."""

    def disconnect(self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = "") -> bool:
        """Disconnect a client of this node; whether it was here."""


class ClusterView(Protocol):
    """Reads and actions over every node sharing the server's broker (one node without one)."""

    @property
    def node_id(self) -> str: ...

    async def get_clients(self, room: str | None = None) -> list[ClientInfo]: ...

    async def get_room_members(self, room: str) -> list[str]: ...

    async def get_rooms(self) -> list[str]: ...

    async def get_stats(self) -> ClusterStats: ...

    async def presence(self, room: str) -> dict[str, Any]: ...

    async def disconnect(
        self, client_id: str, code: int = DisconnectCode.NORMAL, reason: str = ""
    ) -> bool: ...

    async def get_client(self, client_id: str) -> ClientInfo | None: ...

    async def to_id(self, client_id: str, event: str, data: Any = None) -> bool: ...

    async def to_id_binary(self, client_id: str, event: str, data: bytes) -> bool: ...

    async def join(self, client_id: str, room: str) -> bool: ...

    async def leave(self, client_id: str, room: str) -> bool: ...

    async def history(
        self, room: str, since: int | None = None, limit: int = 100
    ) -> dict[str, Any] | None: ...


class ServerView(Sends, Protocol):
    """What hooks receive as ``server`` and HTTP route registrations as ``context.server``."""

    @property
    def config(self) -> ServerConfig:
        """The configuration in force (``config.plugin(section)`` for a plugin's options)."""

    def get_config(self) -> dict[str, Any]: ...

    def get_stats(self) -> Stats: ...

    def get_clients(self, room: str | None = None) -> list[ClientInfo]: ...

    def get_room_members(self, room: str) -> list[str]: ...

    def get_rooms(self) -> list[str]: ...

    def presence(self, room: str) -> dict[str, Any]: ...

    def get_presence_count(self, room: str) -> int: ...

    @property
    def cluster(self) -> ClusterView: ...

    @property
    def addresses(self) -> dict[str, list[str]]: ...

    @property
    def state(self) -> str: ...

    @property
    def running(self) -> bool: ...

    @property
    def accepting(self) -> bool: ...

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI 3.0 document of the server's events and requests."""

    def logger(self, name: str) -> logging.Logger:
        """The server's logger ``name`` (``stelar.<plugin>``), which follows its ``logger`` option."""

    def tap(self, listener: Callable[[Tapped], None]) -> Callable[[], None]:
        """Call ``listener`` with what goes through this node from now on (client events and
        requests, sends, connections, joins: see :class:`Tapped`); returns the call that stops
        it. For an operator's live view; costs nothing while no listener is there."""

    def count(self, counter: str, amount: int = 1) -> None:
        """Add to a counter of ``get_stats().counters`` (and ``/metrics``: a counter named
        ``name:outcome`` is exported as ``stelar_<name>{outcome="..."}``)."""
