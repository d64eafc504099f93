"""The delivery seam: two hubs joined by an in-memory bus act as one for every emit."""

from stelar_core.builtins.brokers import MemoryBus
from stelar_core.testing import ReceivedEvent


async def test_two_hubs_share_rooms_broadcasts_and_direct_sends(stelar_server_factory, stelar_client_factory):
    bus = MemoryBus()
    one = await stelar_server_factory(broker=bus.broker())
    two = await stelar_server_factory(broker=bus.broker())
    alice = await stelar_client_factory(one)
    bob = await stelar_client_factory(two)
    carol = await stelar_client_factory(two)
    await alice.join("team")
    await bob.join("team")

    @one.on("say")
    def say(ctx):
        ctx.to("team", "said", ctx.data, exclude=ctx.id)

    alice.emit("say", "hello from node one")
    assert await bob.next_event() == ReceivedEvent("said", "hello from node one")

    two.to("team", "room-news", 1)
    assert await alice.next_event() == ReceivedEvent("room-news", 1)
    assert await bob.next_event() == ReceivedEvent("room-news", 1)

    one.broadcast("everyone", 2, exclude=carol.id)
    assert await alice.next_event() == ReceivedEvent("everyone", 2)
    assert await bob.next_event() == ReceivedEvent("everyone", 2)

    one.to_id(carol.id, "direct", 3)
    assert await carol.next_event() == ReceivedEvent("direct", 3)
    assert carol.pending_events() == [] and alice.pending_events() == []


async def test_a_stopped_hub_leaves_the_bus(stelar_server_factory, stelar_client_factory):
    bus = MemoryBus()
    one = await stelar_server_factory(broker=bus.broker())
    two = await stelar_server_factory(broker=bus.broker())
    client = await stelar_client_factory(one)
    await two.stop()
    one.broadcast("still-works", 1)
    assert (await client.next_event()).event == "still-works"
    assert len(bus._subscribers) == 1
