"""The README's quick start: a chat server on WebSocket and TCP, a browser-like client and a
service client in one room. Run it with ``python examples/quickstart.py``.

Ports 0 let the system pick free ones; a real deployment says ``port=3000, tcp_port=3001``.
"""

import asyncio

from stelar_core import RateLimit, StelarClient, StelarServer

server = StelarServer(
    port=0,  # WebSocket (stelar-ws)
    tcp_port=0,  # binary TCP (stelar-tcp)
    max_connections=10_000,
    max_rooms_per_client=50,
    rate_limit=RateLimit(max_points=100, window=1.0),
)


@server.use
def authenticate(ctx, next):
    if ctx.auth.get("token") == "secret":
        ctx.set_metadata("name", ctx.auth["name"])
        next()  # not calling next() refuses the connection


@server.on_connection
def welcome(ctx):
    ctx.emit("welcome", {"name": ctx.get_metadata("name"), "via": ctx.protocol})


@server.on("chat")
def chat(ctx):
    ctx.to("general", "chat", {"from": ctx.get_metadata("name"), "text": ctx.data})


@server.on_ack("get_user")
async def get_user(ctx):
    return {"id": ctx.data["id"], "name": "John", "asked_by": ctx.get_metadata("name")}


async def main() -> None:
    async with server:
        ws_url, tcp_url = server.addresses["ws"][0], server.addresses["tcp"][0]
        ann = StelarClient(ws_url, auth={"token": "secret", "name": "ann"})
        bot = StelarClient(tcp_url, auth={"token": "secret", "name": "bot"})
        inbox: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        ann.on("welcome", lambda data: inbox.put_nowait(("ann", data)))
        bot.on("chat", lambda data: inbox.put_nowait(("bot", data)))
        async with ann, bot:
            print("ann got", (await inbox.get())[1])
            await ann.join_room("general")
            await bot.join_room("general")
            ann.emit("chat", "hello from the browser side")
            print("bot got", (await inbox.get())[1])
            print("request ->", await bot.request("get_user", {"id": 1}))
            print("stats:", server.get_stats().connections_by_transport)


if __name__ == "__main__":
    asyncio.run(main())
