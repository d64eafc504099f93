"""The built-in relay app of ``stelar serve``: clients join rooms; what they send is relayed to
the other members of every room they are in; an ``echo`` request is answered with its data (a
liveness check for clients, and what ``stelar bench --scenario ack`` asks). Its rooms are
presence rooms unless the options say otherwise (the demo page lists who is online)."""

from __future__ import annotations

from typing import Any

from stelar_core.hub.context import Context
from stelar_core.server.server import StelarServer


def relay_to_rooms(ctx: Context) -> None:
    for room in ctx.rooms:
        # JSON never decodes to bytes, so bytes data means a binary event.
        if isinstance(ctx.data, bytes):
            ctx.to_binary(room, ctx.event, ctx.data, exclude=ctx.id)
        else:
            ctx.to(room, ctx.event, ctx.data, exclude=ctx.id)


def build_relay_server(**options: Any) -> StelarServer:
    options.setdefault("rooms", {"*": {"presence": True}})
    server = StelarServer(**options)
    server.on_any(relay_to_rooms)
    server.on_ack("echo", echo)
    return server


def echo(ctx: Context) -> Any:
    return ctx.data
