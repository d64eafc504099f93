from stelar_core import StelarServer


async def test_roundtrip(stelar_server: StelarServer, stelar_client_factory):
    @stelar_server.on("chat")
    def chat(ctx):
        ctx.broadcast("chat", ctx.data, include_self=True)

    @stelar_server.on_ack("add")
    async def add(ctx):
        return ctx.data["a"] + ctx.data["b"]

    a = await stelar_client_factory(stelar_server)
    b = await stelar_client_factory(stelar_server)
    a.emit("chat", {"text": "hi"})
    assert (await b.next_event()).data == {"text": "hi"}
    assert (await a.next_event()).data == {"text": "hi"}
    assert await a.request("add", {"a": 1, "b": 2}) == 3
    assert await a.join("r") == {"ok": True}
    assert stelar_server.get_room_members("r") == [a.id]
