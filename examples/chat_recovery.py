"""A chat whose clients miss nothing across reconnects, and reload when they would.

The room keeps its last 5 messages. Ann goes offline twice: the first time 3 messages are said
meanwhile, and she gets exactly those when she is back (``recovered``); the second time 8 are, more
than the room keeps, so she is told ``not_recovered`` and reloads the room from the server's own
store instead (docs/delivery.md).

    python examples/chat_recovery.py
"""

import asyncio

from stelar_core import StelarClient, StelarServer

ROOM = "chat:lobby"


async def main() -> None:
    server = StelarServer(port=0, rooms={"chat:*": {"history_size": 5}}, logger=False)
    said: list[str] = []  # the application's own store of the conversation

    @server.on("say")
    def say(ctx):
        said.append(ctx.data)
        ctx.to(ROOM, "message", ctx.data)

    @server.on_ack("recent")
    def recent(ctx):
        return said[-ctx.data :]

    async with server:
        url = server.addresses["ws"][0]
        ann, bob = StelarClient(url), StelarClient(url)
        shown: list[str] = []
        caught_up = asyncio.Queue()
        ann.on("message", shown.append)
        ann.on("recovered", lambda info: caught_up.put_nowait(f"recovered {info['replayed']} missed"))

        @ann.on("not_recovered")
        async def reload(info):
            shown[:] = await ann.request("recent", 20)
            caught_up.put_nowait(f"not recovered ({info['reason']}): reloaded {len(shown)}")

        async with ann, bob:
            await ann.join_room(ROOM)
            await bob.join_room(ROOM)
            for rounds, missed in enumerate((3, 8)):
                await ann.disconnect()  # the phone sleeps
                for n in range(missed):
                    bob.emit("say", f"bob {rounds}.{n}")
                await bob.request("recent", 0)  # answered once the server handled all of them
                await ann.connect()  # back: the room is rejoined from the last message seen
                print(await asyncio.wait_for(caught_up.get(), 5))
                print("ann shows", len(shown), "messages, the last:", shown[-1])


if __name__ == "__main__":
    asyncio.run(main())
