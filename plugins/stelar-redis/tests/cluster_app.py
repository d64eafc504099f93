"""A stelar node for the cluster tests, run as a process of its own:

    python tests/cluster_app.py '{"url": "redis://...", "prefix": "...", ...}'

It prints one JSON line (its node ID and transport URLs) once it listens, then serves until
SIGTERM. Its handlers let a test drive the server API from a client: ``do`` runs one server
call (``to``, ``broadcast``, ``to_id``, ``request``, ``disconnect``, reads) and answers with
what it returned or raised.
"""

from __future__ import annotations

import asyncio
import json
import sys

import attrs

from stelar_core import StelarServer
from stelar_core.plugin_api import AckError, AckTimeout, NotConnected


def build(settings: dict) -> StelarServer:
    redis = {"url": settings.pop("url"), "prefix": settings.pop("prefix")}
    redis.update(settings.pop("redis", {}))
    server = StelarServer(
        host="127.0.0.1",
        port=0,
        tcp_port=0,
        broker="redis",
        rate_limiter=settings.pop("rate_limiter", "token-bucket"),
        rate_limit=settings.pop("rate_limit", {"max_points": 1000, "window": 1.0}),
        ip_tracker=settings.pop("ip_tracker", "memory"),
        redis=redis,
        graceful_shutdown=True,
        **settings,
    )

    @server.use
    def user(ctx, next):
        # The user a client says it is keys its shared rate limits (rate_limit_key="user").
        if "user" in ctx.auth:
            ctx.set_metadata("user", ctx.auth["user"])
        next()

    @server.on("say")
    def say(ctx):
        ctx.to(ctx.data["room"], "said", ctx.data["text"], exclude=ctx.data.get("exclude"))

    @server.on_ack("echo")
    def echo(ctx):
        return ctx.data

    @server.on_ack("do", concurrent=True)
    async def do(ctx):
        action, args = ctx.data["action"], ctx.data.get("args", {})
        try:
            return {"ok": _plain(await _run(server, action, args))}
        except (AckError, AckTimeout, NotConnected) as exc:
            return {"error": type(exc).__name__, "message": str(exc), "code": getattr(exc, "code", None)}

    return server


async def _run(server: StelarServer, action: str, args: dict):
    cluster = server.cluster
    if action == "to":
        return server.to(args["room"], args["event"], args["data"], exclude=args.get("exclude"))
    if action == "broadcast":
        return server.broadcast(args["event"], args["data"], exclude=args.get("exclude"))
    if action == "broadcast_binary":
        return server.broadcast_binary(args["event"], args["data"].encode())
    if action == "to_id":
        return server.to_id(args["client_id"], args["event"], args["data"])
    if action == "request":
        return await server.request(
            args["client_id"], args["event"], args.get("data"), timeout=args.get("timeout")
        )
    if action == "disconnect":
        return await cluster.disconnect(args["client_id"], 4001, "asked by another node")
    if action == "clients":
        return sorted(
            (info.id, info.protocol, sorted(info.rooms))
            for info in await cluster.get_clients(args.get("room"))
        )
    if action == "members":
        return await cluster.get_room_members(args["room"])
    if action == "rooms":
        return await cluster.get_rooms()
    if action == "stats":
        stats = await cluster.get_stats()
        return {"nodes": sorted(stats.nodes), "active": stats.active_connections, "rooms": stats.total_rooms}
    raise ValueError(f"unknown action {action!r}")


def _plain(value):
    if attrs.has(type(value)):
        return attrs.asdict(value)
    return value


async def main() -> None:
    server = build(json.loads(sys.argv[1]))
    await server.start()
    print(
        json.dumps({"node_id": server.cluster.node_id, **{k: v[0] for k, v in server.addresses.items()}}),
        flush=True,
    )
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
