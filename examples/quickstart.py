"""The README's quick start: a chat server and two clients, in one process, no network.

Run it with ``python examples/quickstart.py``. Swap ``transports=["memory"]`` for ``port=3000``
(stelar-ws) or ``tcp_port=3001`` (stelar-tcp) to serve real clients.
"""

import asyncio

from stelar_core import RateLimit, StelarServer
from stelar_core.testing import connect_client

server = StelarServer(
    transports=["memory"],
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
    ctx.emit("welcome", {"id": ctx.id, "name": ctx.get_metadata("name")})


@server.on("chat")
def chat(ctx):
    ctx.to("general", "chat", {"from": ctx.get_metadata("name"), "text": ctx.data["text"]})


@server.on_ack("get_user")
async def get_user(ctx):
    return {"id": ctx.data["id"], "name": "John", "role": "user"}


async def main() -> None:
    async with server:
        ann = await connect_client(server, auth={"token": "secret", "name": "ann"})
        bob = await connect_client(server, auth={"token": "secret", "name": "bob"})
        print("ann got", (await ann.next_event()).data)
        print("bob got", (await bob.next_event()).data)
        await ann.join("general")
        await bob.join("general")
        ann.emit("chat", {"text": "hello!"})
        print("bob got", (await bob.next_event()).data)  # ann is in the room too, and gets it as well
        print("request ->", await ann.request("get_user", {"id": 1}))
        print("stats:", server.get_stats().active_connections, "clients,", server.get_rooms(), "rooms")


if __name__ == "__main__":
    asyncio.run(main())
