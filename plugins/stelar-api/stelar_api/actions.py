"""Running the server API's commands on a server: each one through ``server.cluster``, so that
it reaches every node sharing the broker (a client on another node too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from stelar_api.commands import Command
from stelar_core.plugin_api import ClientInfo, DisconnectCode, ServerView

DEFAULT_PAGE = 100
DEFAULT_CLIENTS = 1000


class NotFound(Exception):
    """The command names something no node has (a client, a room's history): 404."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def client_json(info: ClientInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "transport": info.protocol,
        "address": info.remote_address,
        "rooms": sorted(info.rooms),
        "metadata": dict(info.metadata),
        "connected_at": info.connected_at,
    }


def _no_client(client_id: str) -> NotFound:
    return NotFound("client_not_found", f"no client {client_id!r} is connected to any node")


def _found(found: bool, client_id: str) -> dict[str, Any]:
    if not found:
        raise _no_client(client_id)
    return {}


async def _publish(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    exclude = p.get("exclude")
    if "binary" in p:
        server.to_binary(p["room"], p["event"], p["binary"], exclude)
    else:
        server.to(p["room"], p["event"], p.get("data"), exclude)
    return {}


async def _broadcast(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    if "binary" in p:
        server.broadcast_binary(p["event"], p["binary"], p.get("exclude"))
    else:
        server.broadcast(p["event"], p.get("data"), p.get("exclude"))
    return {}


async def _send(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    cluster = server.cluster
    if "binary" in p:
        found = await cluster.to_id_binary(p["client"], p["event"], p["binary"])
    else:
        found = await cluster.to_id(p["client"], p["event"], p.get("data"))
    return _found(found, p["client"])


async def _disconnect(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    code = p.get("code", DisconnectCode.NORMAL)
    return _found(await server.cluster.disconnect(p["client"], code, p.get("reason", "")), p["client"])


async def _join(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    return _found(await server.cluster.join(p["client"], p["room"]), p["client"])


async def _leave(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    return _found(await server.cluster.leave(p["client"], p["room"]), p["client"])


async def _rooms(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    return {"rooms": sorted(await server.cluster.get_rooms())}


async def _members(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    return {"members": sorted(await server.cluster.get_room_members(p["room"]))}


async def _clients(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    clients = sorted(await server.cluster.get_clients(p.get("room")), key=lambda info: info.id)
    limit = p.get("limit", DEFAULT_CLIENTS)
    return {"clients": [client_json(info) for info in clients[:limit]], "total": len(clients)}


async def _info(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    info = await server.cluster.get_client(p["client"])
    if info is None:
        raise _no_client(p["client"])
    return client_json(info)


async def _stats(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    stats = await server.cluster.get_stats()
    return {
        "node_count": stats.node_count,
        "total_rooms": stats.total_rooms,
        "totals": dict(stats.totals),
        "connections_by_transport": dict(stats.connections_by_transport),
        "nodes": {node: dict(figures) for node, figures in stats.nodes.items()},
    }


async def _presence(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    room = p["room"]
    policy = server.config.rooms.for_room(room)
    if policy is None or not policy.presence:
        raise NotFound("no_presence", f"room {room!r} keeps no presence")
    return {"members": await server.cluster.presence(room)}


async def _history(server: ServerView, p: dict[str, Any]) -> dict[str, Any]:
    room = p["room"]
    page = await server.cluster.history(room, p.get("since"), p.get("limit", DEFAULT_PAGE))
    if page is None:
        raise NotFound("no_history", f"room {room!r} keeps no history")
    return page


Action = Callable[[ServerView, dict[str, Any]], Awaitable[dict[str, Any]]]
ACTIONS: dict[str, Action] = {
    "publish": _publish,
    "broadcast": _broadcast,
    "send": _send,
    "disconnect": _disconnect,
    "join": _join,
    "leave": _leave,
    "rooms": _rooms,
    "members": _members,
    "clients": _clients,
    "info": _info,
    "stats": _stats,
    "presence": _presence,
    "history": _history,
}


async def run(server: ServerView, command: Command) -> dict[str, Any]:
    """The command's result; :class:`NotFound` when it names what no node has."""
    return await ACTIONS[command.name](server, dict(command.params))
