"""Typed handlers over real sockets (both transports): payloads structured from JSON before the
handler runs, answers unstructured, every way a payload can fail to fit, the typed client."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from typing import Literal, TypedDict

import attrs
import pytest

from stelar_core import AckError, StelarClient, hookimpl
from stelar_core.errors import InvalidPayload
from stelar_core.testing import connect_client


@attrs.frozen
class ChatMessage:
    room: str
    text: str = attrs.field(validator=attrs.validators.max_len(20))


class Mood(enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


@dataclasses.dataclass
class Profile:
    nickname: str
    mood: Mood = Mood.HAPPY
    tags: list[str] = dataclasses.field(default_factory=list)


@attrs.frozen
class UserQuery:
    id: int
    fields: tuple[str, ...] = ()


@attrs.frozen
class User:
    id: int
    name: str
    profile: Profile | None = None


class Move(TypedDict):
    x: float
    y: float
    piece: Literal["pawn", "king"]


@pytest.fixture(params=["tcp", "ws"])
def stelar_transport(request):
    return request.param


class _Invalid:
    def __init__(self, queue):
        self.queue = queue

    @hookimpl
    def stelar_on_invalid_payload(self, client_id, event, errors):
        self.queue.put_nowait((client_id, event, errors))


@pytest.fixture
async def server(stelar_server_factory):
    server = await stelar_server_factory()
    server.seen = asyncio.Queue()
    server.invalid = asyncio.Queue()
    server.plugin_manager.register(_Invalid(server.invalid), name="invalid-payloads")

    @server.on("chat")
    def chat(ctx, msg: ChatMessage):
        server.seen.put_nowait(msg)
        ctx.to(msg.room, "chat", msg)  # an attrs instance goes out as its fields

    @server.on("move")
    async def move(ctx, move: Move):
        server.seen.put_nowait(move)

    @server.on("count")
    def count(ctx, n: int):
        server.seen.put_nowait(n)

    @server.on("raw")
    def raw(ctx, anything):  # a second parameter without a type: the payload as it came
        server.seen.put_nowait(anything)

    @server.on_ack("get_user")
    async def get_user(ctx, q: UserQuery) -> User:
        await asyncio.sleep(0)
        return User(q.id, "Ada", Profile("ada", Mood.GRUMPY, list(q.fields)))

    @server.on_ack("echo_profile")
    def echo_profile(ctx, profile: Profile) -> Profile:
        return profile

    @server.on_ack("untyped")
    def untyped(ctx):
        return {"data": ctx.data}

    return server


async def test_a_typed_event_gets_its_payload_structured(server):
    client = await connect_client(server)
    await client.join("lobby")
    client.emit("chat", {"room": "lobby", "text": "hello"})
    assert await asyncio.wait_for(server.seen.get(), 5) == ChatMessage("lobby", "hello")
    relayed = await client.next_event()
    assert (relayed.event, relayed.data) == ("chat", {"room": "lobby", "text": "hello"})
    client.emit("move", {"x": 1, "y": 2.5, "piece": "king"})
    assert await asyncio.wait_for(server.seen.get(), 5) == {"x": 1, "y": 2.5, "piece": "king"}
    client.emit("count", 3)
    client.emit("raw", ["as", "it", "came"])
    assert await asyncio.wait_for(server.seen.get(), 5) == 3
    assert await asyncio.wait_for(server.seen.get(), 5) == ["as", "it", "came"]
    client.close()


async def test_a_typed_request_checks_its_payload_and_unstructures_its_answer(server):
    client = await connect_client(server)
    answer = await client.request("get_user", {"id": 7, "fields": ["email"]})
    assert answer == {
        "id": 7,
        "name": "Ada",
        "profile": {"nickname": "ada", "mood": "grumpy", "tags": ["email"]},
    }
    assert await client.request("untyped", [1, 2]) == {"data": [1, 2]}  # as before
    client.close()


@pytest.mark.parametrize(
    ("event", "payload", "problems"),
    [
        ("chat", {"room": "lobby", "text": "x" * 21}, ["$.text: Length of 'text' must be <= 20: 21"]),
        ("chat", {"text": "hi"}, ["$.room: required field missing"]),
        ("chat", {"room": 5, "text": "hi"}, ["$.room: expected a string, got number"]),
        ("chat", {"room": "a", "text": "hi", "admin": True}, ["$: unknown fields: admin"]),
        ("chat", None, ["$: expected an object, got null"]),
        ("chat", ["lobby", "hi"], ["$: expected an object, got array"]),
        (
            "move",
            {"x": "1", "y": True, "piece": "queen"},
            [
                "$.x: expected a number, got string",
                "$.y: expected a number, got boolean",
                "$.piece: expected one of 'pawn', 'king'",
            ],
        ),
        ("count", "3", ["$: expected an integer, got string"]),
        ("count", 2.5, ["$: expected an integer, got number"]),
    ],
)
async def test_a_payload_that_does_not_fit_is_refused_naming_the_field_and_the_rule(
    server, event, payload, problems
):
    client = await connect_client(server)
    client.emit(event, payload)
    code, body = await client.next_error()
    assert code == "invalid_payload" and body["event"] == event
    assert sorted(body["errors"]) == sorted(problems)
    assert body["message"].startswith(f"invalid payload for {event!r}: ")
    assert await asyncio.wait_for(server.invalid.get(), 5) == (client.id, event, body["errors"])
    assert server.seen.empty()  # the handler was not called
    assert server.get_stats().invalid_payloads == 1
    assert server.get_stats().handler_errors == 0
    assert server.get_stats().to_dict()["invalid_payloads"] == 1
    client.emit("count", 1)  # the connection goes on
    assert await asyncio.wait_for(server.seen.get(), 5) == 1
    client.close()


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"id": "7"}, "$.id: expected an integer, got string"),
        ({"id": 7, "fields": "email"}, "$.fields: expected an array, got string"),
        ({"id": 7, "fields": ["email", 3]}, "$.fields[1]: expected a string, got number"),
        ({}, "$.id: required field missing"),
    ],
)
async def test_a_request_that_does_not_fit_is_answered_invalid_payload(server, payload, problem):
    client = await connect_client(server)
    with pytest.raises(AckError) as refused:
        await client.request("get_user", payload)
    assert refused.value.code == "invalid_payload" and problem in refused.value.message
    assert await asyncio.wait_for(server.invalid.get(), 5) == (client.id, "get_user", [problem])
    assert server.get_stats().invalid_payloads == 1
    client.close()


async def test_an_enum_outside_its_values_is_refused(server):
    client = await connect_client(server)
    with pytest.raises(AckError, match=r"\$.mood: 'sleepy' is not a valid Mood"):
        await client.request("echo_profile", {"nickname": "ada", "mood": "sleepy"})
    assert await client.request("echo_profile", {"nickname": "ada"}) == {
        "nickname": "ada",
        "mood": "happy",
        "tags": [],
    }
    client.close()


async def test_the_typed_client_emits_and_requests_with_the_same_classes(server, stelar_transport):
    url = server.addresses[stelar_transport][0]
    async with StelarClient(url, reconnection=False) as client:
        client.emit("chat", ChatMessage("lobby", "typed"))
        assert await asyncio.wait_for(server.seen.get(), 5) == ChatMessage("lobby", "typed")
        user = await client.request("get_user", UserQuery(3, ("bio",)), result=User)
        assert user == User(3, "Ada", Profile("ada", Mood.GRUMPY, ["bio"]))
        profile = await client.request("echo_profile", Profile("bo", Mood.HAPPY, ["x"]), result=Profile)
        assert profile == Profile("bo", Mood.HAPPY, ["x"])
        with pytest.raises(
            InvalidPayload, match=r"invalid payload for 'untyped': \$.id: required field missing"
        ):
            await client.request("untyped", None, result=User)  # the answer does not fit
        assert await client.request("untyped", 5, result=dict[str, int]) == {"data": 5}


async def test_a_handler_that_raises_invalid_payload_itself_is_a_handler_error(stelar_server_factory):
    server = await stelar_server_factory()

    @server.on_ack("lookup")
    def lookup(ctx, q: UserQuery):
        raise InvalidPayload("elsewhere", ["$.x: from a call the handler made"])

    client = await connect_client(server)
    with pytest.raises(AckError) as failed:
        await client.request("lookup", {"id": 1})
    assert failed.value.code == "handler_error"
    assert server.get_stats().invalid_payloads == 0 and server.get_stats().handler_errors == 1
    client.close()


def test_untyped_handlers_are_stored_as_they_are_and_off_finds_typed_ones(stelar_server_factory):
    from stelar_core import StelarServer

    server = StelarServer(transports=["memory"])

    def plain(ctx):
        return None

    def typed(ctx, msg: ChatMessage):
        return None

    server.on("a", plain)
    server.on("a", typed)
    stored = server.hub.handlers.for_event("a")
    assert stored[0] is plain  # no wrapper: the untyped path costs what it did
    assert stored[1] is not typed and stored[1].__wrapped__ is typed
    server.off("a", typed)
    assert server.hub.handlers.for_event("a") == (plain,)
