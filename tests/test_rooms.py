"""Rooms: join/leave over the wire and from handlers, limits and their hooks, cleanup."""

from stelar_core import ErrorCode, StelarServer


async def test_join_and_leave_are_answered_and_rooms_vanish_when_empty(stelar_server, stelar_client_factory):
    a, b = await stelar_client_factory(stelar_server), await stelar_client_factory(stelar_server)
    assert await a.join("lobby") == {"ok": True}
    assert await a.join("lobby") == {"ok": True}  # joining twice is harmless
    assert await b.join("lobby") == {"ok": True}
    assert sorted(stelar_server.get_room_members("lobby")) == sorted([a.id, b.id])
    assert stelar_server.get_rooms() == ["lobby"]
    assert {c.id for c in stelar_server.get_clients("lobby")} == {a.id, b.id}
    assert await a.leave("lobby") == {"ok": True}
    assert await b.leave("lobby") == {"ok": True}
    assert stelar_server.get_rooms() == []
    assert stelar_server.get_stats().total_rooms == 0


async def test_leaving_a_room_one_is_not_in(stelar_server, stelar_client):
    answer = await stelar_client.leave("never-joined")
    assert answer["error"]["code"] == ErrorCode.NOT_IN_ROOM


async def test_a_disconnect_removes_the_client_from_its_rooms(stelar_server, stelar_client_factory):
    a, b = await stelar_client_factory(stelar_server), await stelar_client_factory(stelar_server)
    await a.join("x")
    await a.join("y")
    await b.join("y")
    a.close()
    await a.wait_closed()
    assert stelar_server.get_rooms() == ["y"]
    assert stelar_server.get_room_members("y") == [b.id]


async def test_handlers_join_and_leave_for_their_client(stelar_server, stelar_client_factory):
    @stelar_server.on("enter")
    def enter(ctx):
        assert ctx.join_room(ctx.data)
        ctx.to(ctx.data, "joined", ctx.id)

    @stelar_server.on("exit")
    def exit_(ctx):
        ctx.emit("left", [ctx.leave_room(ctx.data), sorted(ctx.rooms)])

    client = await stelar_client_factory(stelar_server)
    client.emit("enter", "game-1")
    assert (await client.next_event()).data == client.id
    client.emit("exit", "game-1")
    assert (await client.next_event()).data == [True, []]
    client.emit("exit", "game-1")
    assert (await client.next_event()).data == [False, []]


async def test_join_hook_can_reject(stelar_server_factory, stelar_client_factory):
    def only_admins(room, metadata):
        if room.startswith("admin-") and metadata.get("role") != "admin":
            return False
        return None

    server = await stelar_server_factory(hooks={"on_client_join_room": only_admins})

    @server.on("promote")
    def promote(ctx):
        ctx.set_metadata("role", "admin")
        ctx.emit("promoted")

    client = await stelar_client_factory(server)
    answer = await client.join("admin-panel")
    assert answer["error"]["code"] == ErrorCode.JOIN_REJECTED
    assert await client.join("public") == {"ok": True}
    client.emit("promote")
    await client.next_event()
    assert await client.join("admin-panel") == {"ok": True}


async def test_leave_hook_can_reject(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(hooks={"on_client_leave_room": lambda room: room != "jail" and None})
    client = await stelar_client_factory(server)
    await client.join("jail")
    answer = await client.leave("jail")
    assert answer["error"]["code"] == ErrorCode.LEAVE_REJECTED
    assert server.get_room_members("jail") == [client.id]


async def test_rooms_per_client_limit_and_its_hook(stelar_server_factory, stelar_client_factory):
    reached = []
    server = await stelar_server_factory(
        max_rooms_per_client=2,
        hooks={
            "on_max_rooms_per_client_reached": lambda client_id, room, current_rooms, max_rooms: (
                reached.append((client_id, room, current_rooms, max_rooms))
            )
        },
    )
    client = await stelar_client_factory(server)
    await client.join("a")
    await client.join("b")
    answer = await client.join("c")
    assert answer["error"]["code"] == ErrorCode.MAX_ROOMS_PER_CLIENT
    assert reached == [(client.id, "c", 2, 2)]
    assert sorted(server.get_rooms()) == ["a", "b"]


async def test_global_rooms_limit_and_its_hook(stelar_server_factory, stelar_client_factory):
    reached = []
    server = await stelar_server_factory(
        max_rooms=2, hooks={"on_max_rooms_reached": lambda room, total_rooms, max_rooms: reached.append(room)}
    )
    a, b = await stelar_client_factory(server), await stelar_client_factory(server)
    await a.join("one")
    await a.join("two")
    assert (await b.join("three"))["error"]["code"] == ErrorCode.MAX_ROOMS
    assert await b.join("two") == {"ok": True}  # an existing room can still be joined
    assert reached == ["three"]


async def test_room_names_are_validated(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(max_event_name_length=8)
    client = await stelar_client_factory(server)
    assert (await client.join("x" * 9))["error"]["code"] == ErrorCode.INVALID_EVENT
    assert (await client.join(""))["error"]["code"] == ErrorCode.INVALID_EVENT
    assert server.get_rooms() == []


async def test_get_clients_lists_rooms_and_metadata(stelar_server, stelar_client_factory):
    @stelar_server.on_connection
    def tag(ctx):
        ctx.set_metadata("role", "user")

    client = await stelar_client_factory(stelar_server)
    await client.join("r")
    (info,) = stelar_server.get_clients()
    assert (info.id, info.protocol, info.rooms, dict(info.metadata)) == (
        client.id,
        "memory",
        frozenset({"r"}),
        {"role": "user"},
    )


def test_a_server_that_never_started_has_no_rooms():
    assert StelarServer(transports=["memory"]).get_rooms() == []
