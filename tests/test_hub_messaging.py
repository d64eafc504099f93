"""Events, handlers and every way of sending, over the in-memory transport."""

import asyncio

import pytest

from stelar_core import StelarServer
from stelar_core.hub import emitter as emitter_module
from stelar_core.testing import ReceivedEvent


async def suspend_once():
    """Give control back to the event loop once, as a handler awaiting real I/O would."""
    loop = asyncio.get_running_loop()
    resumed = loop.create_future()
    loop.call_soon(resumed.set_result, None)
    await resumed


async def test_handlers_sync_and_async_receive_a_context(stelar_server, stelar_client_factory):
    seen = []

    @stelar_server.on("hello")
    def sync_handler(ctx):
        seen.append(("sync", ctx.event, ctx.data, ctx.protocol, ctx.remote_address))

    async def async_handler(ctx):
        await suspend_once()
        seen.append(("async", ctx.id))
        ctx.emit("done", len(seen))

    stelar_server.on("hello", async_handler)
    client = await stelar_client_factory(stelar_server)
    client.emit("hello", {"n": 1})
    assert await client.next_event() == ReceivedEvent("done", 2)
    assert seen == [("sync", "hello", {"n": 1}, "memory", "memory"), ("async", client.id)]


async def test_messages_of_one_client_are_handled_in_order_even_with_async_handlers(
    stelar_server, stelar_client_factory
):
    order = []

    @stelar_server.on("n")
    async def slow_then_fast(ctx):
        if ctx.data == 0:
            for _ in range(5):
                await suspend_once()
        order.append(ctx.data)
        if ctx.data == 49:
            ctx.emit("finished")

    client = await stelar_client_factory(stelar_server)
    for n in range(50):
        client.emit("n", n)
    await client.next_event()
    assert order == list(range(50))


async def test_on_any_sees_every_event_after_its_own_handlers(stelar_server, stelar_client_factory):
    calls = []
    stelar_server.on("a", lambda ctx: calls.append(("a", ctx.event)))
    stelar_server.on_any(lambda ctx: calls.append(("any", ctx.event)))

    @stelar_server.on("b")
    def b(ctx):
        calls.append(("b", ctx.event))
        ctx.emit("ack")

    client = await stelar_client_factory(stelar_server)
    client.emit("a")
    client.emit("b")
    await client.next_event()
    assert calls == [("a", "a"), ("any", "a"), ("b", "b"), ("any", "b")]


async def test_binary_events_carry_bytes_both_ways(stelar_server, stelar_client_factory):
    @stelar_server.on("file")
    def echo(ctx):
        assert isinstance(ctx.data, bytes)
        ctx.emit_binary("file", ctx.data[::-1])

    client = await stelar_client_factory(stelar_server)
    client.emit_binary("file", b"\x00\x01\xff")
    assert await client.next_event() == ReceivedEvent("file", b"\xff\x01\x00", binary=True)


async def test_broadcast_reaches_everyone_but_the_excluded(stelar_server, stelar_client_factory):
    clients = [await stelar_client_factory(stelar_server) for _ in range(4)]
    stelar_server.broadcast("news", {"v": 1}, exclude=clients[0].id)
    for client in clients[1:]:
        assert await client.next_event() == ReceivedEvent("news", {"v": 1})
    stelar_server.broadcast("second", exclude=[clients[1].id, clients[2].id])
    assert (await clients[0].next_event()).event == "second"
    assert (await clients[3].next_event()).event == "second"
    assert clients[1].pending_events() == [] and clients[2].pending_events() == []


async def test_ctx_broadcast_skips_the_sender_unless_asked(stelar_server, stelar_client_factory):
    @stelar_server.on("say")
    def say(ctx):
        ctx.broadcast("said", ctx.data, include_self=ctx.data == "me too")

    a, b = await stelar_client_factory(stelar_server), await stelar_client_factory(stelar_server)
    a.emit("say", "hi")
    assert await b.next_event() == ReceivedEvent("said", "hi")
    a.emit("say", "me too")
    assert await a.next_event() == ReceivedEvent("said", "me too")
    assert await b.next_event() == ReceivedEvent("said", "me too")


async def test_ctx_broadcast_also_leaves_out_whom_it_excludes(stelar_server, stelar_client_factory):
    a, b, c = [await stelar_client_factory(stelar_server) for _ in range(3)]

    @stelar_server.on("say")
    def say(ctx):
        ctx.broadcast("said", ctx.data, exclude=[b.id])
        ctx.broadcast_binary("raw", b"\x01", exclude=b.id, include_self=True)
        ctx.to_id_binary(b.id, "direct", b"\x02")  # the Emitter's sends are ctx's too

    a.emit("say", "hi")
    assert await c.next_event() == ReceivedEvent("said", "hi")
    assert await c.next_event() == ReceivedEvent("raw", b"\x01", binary=True)
    assert await a.next_event() == ReceivedEvent("raw", b"\x01", binary=True)  # include_self
    assert await b.next_event() == ReceivedEvent("direct", b"\x02", binary=True)  # b got nothing else first


async def test_to_room_and_to_id_and_their_binary_forms(stelar_server, stelar_client_factory):
    a, b, c = [await stelar_client_factory(stelar_server) for _ in range(3)]
    await a.join("r")
    await b.join("r")
    stelar_server.to("r", "room-msg", [1], exclude=a.id)
    assert await b.next_event() == ReceivedEvent("room-msg", [1])
    stelar_server.to_binary("r", "room-bin", b"xy")
    assert await a.next_event() == ReceivedEvent("room-bin", b"xy", binary=True)
    assert await b.next_event() == ReceivedEvent("room-bin", b"xy", binary=True)
    stelar_server.to_id(c.id, "direct", "only c")
    stelar_server.to_id_binary(c.id, "direct-bin", b"c")
    assert await c.next_event() == ReceivedEvent("direct", "only c")
    assert await c.next_event() == ReceivedEvent("direct-bin", b"c", binary=True)
    stelar_server.broadcast_binary("all-bin", b"!")
    for client in (a, b, c):
        assert await client.next_event() == ReceivedEvent("all-bin", b"!", binary=True)
    assert a.pending_events() == [] and c.pending_events() == []


async def test_to_id_of_an_unknown_client_is_a_no_op(stelar_server, stelar_client):
    stelar_server.to_id("nobody", "x", 1)
    stelar_server.to("empty-room", "x", 1)
    stelar_client.emit("nothing-handles-this")
    assert stelar_server.get_stats().total_messages_sent == 1  # the connect answer only


async def test_a_broadcast_is_encoded_once_whatever_the_number_of_recipients(
    stelar_server, stelar_client_factory, monkeypatch
):
    clients = [await stelar_client_factory(stelar_server) for _ in range(50)]
    for client in clients:
        await client.join("big")
    calls = []
    # The server's emitter hands the fan-out its encoder (a call of the fan-out's own encode
    # could not be counted this way when the fan-out is compiled: stelar_core.compiled).
    real = emitter_module.encode_event
    monkeypatch.setattr(emitter_module, "encode_event", lambda *a, **k: calls.append(a) or real(*a, **k))
    stelar_server.to("big", "fan", {"x": 1})
    stelar_server.broadcast("all", 2)
    assert len(calls) == 2
    for client in clients:
        assert (await client.next_event()).event == "fan"
        assert (await client.next_event()).event == "all"


async def test_a_raising_handler_is_counted_reported_and_the_connection_kept(
    stelar_server_factory, stelar_client_factory, caplog
):
    reported = []
    stelar_server = await stelar_server_factory(
        hooks={"on_handler_error": lambda event, error: reported.append((event, repr(error)))}
    )

    @stelar_server.on("boom")
    def boom(ctx):
        raise RuntimeError("handler bug")

    @stelar_server.on("boom")
    def after(ctx):
        ctx.emit("still-called")

    @stelar_server.on("async-boom")
    async def async_boom(ctx):
        raise ValueError("async bug")

    @stelar_server.on("ping")
    def ping(ctx):
        ctx.emit("pong")

    client = await stelar_client_factory(stelar_server)
    client.emit("boom")
    assert (await client.next_event()).event == "still-called"
    client.emit("async-boom")
    client.emit("ping")
    assert (await client.next_event()).event == "pong"
    assert stelar_server.get_stats().handler_errors == 2
    assert "handler bug" in caplog.text and "async bug" in caplog.text
    assert reported == [("boom", "RuntimeError('handler bug')"), ("async-boom", "ValueError('async bug')")]


async def test_emitting_an_unserializable_value_raises_at_the_call(stelar_server):
    with pytest.raises(TypeError):
        stelar_server.broadcast("x", object())
    with pytest.raises(ValueError, match="non-empty string"):
        stelar_server.broadcast("", 1)


async def test_registration_is_a_call_or_a_decorator_and_off_removes():
    server = StelarServer(transports=["memory"])

    def handler(ctx):
        return None

    assert server.on("a", handler) is handler
    assert server.on("b")(handler) is handler
    assert server.on_ack("c")(handler) is handler
    assert server.on_any(handler) is handler
    assert server.on_connection(handler) is handler
    assert server.on_disconnect(handler) is handler
    assert server.use(handler) is handler
    server.off("a", handler)
    assert "a" not in server.hub.handlers.events()
    server.off("b")
    assert "b" not in server.hub.handlers.events()
    with pytest.raises(ValueError):
        server.on("")
