"""Request/response in both directions, correlated by ack id."""

import asyncio

import pytest

from stelar_core import AckError, AckTimeout, ErrorCode, NotConnected
from stelar_core.protocol import FrameType, dump_json
from stelar_core.testing import FakeClock


async def test_the_return_value_is_the_answer(stelar_server, stelar_client):
    stelar_server.on_ack("add", lambda ctx: ctx.data["a"] + ctx.data["b"])
    assert await stelar_client.request("add", {"a": 2, "b": 3}) == 5


async def test_async_handlers_answer_and_many_requests_fly_at_once(
    stelar_server_factory, stelar_client_factory
):
    server = await stelar_server_factory(rate_limit=None)

    @server.on_ack("echo")
    async def echo(ctx):
        return {"n": ctx.data, "by": ctx.id}

    client = await stelar_client_factory(server)
    answers = await asyncio.gather(*(client.request("echo", n) for n in range(200)))
    assert answers == [{"n": n, "by": client.id} for n in range(200)]


async def test_a_raised_exception_reaches_the_caller_as_an_error(stelar_server, stelar_client):
    @stelar_server.on_ack("validate")
    def validate(ctx):
        raise ValueError("Invalid token")

    @stelar_server.on_ack("validate-async")
    async def validate_async(ctx):
        raise PermissionError("nope")

    with pytest.raises(AckError) as info:
        await stelar_client.request("validate", {})
    assert (info.value.code, info.value.message) == (ErrorCode.HANDLER_ERROR, "Invalid token")
    with pytest.raises(AckError, match="nope"):
        await stelar_client.request("validate-async")
    assert stelar_server.get_stats().handler_errors == 2
    stelar_server.on_ack("ok", lambda ctx: "still here")
    assert await stelar_client.request("ok") == "still here"


async def test_a_request_without_handler_is_answered_no_handler(stelar_server, stelar_client):
    with pytest.raises(AckError) as info:
        await stelar_client.request("missing")
    assert info.value.code == ErrorCode.NO_HANDLER
    assert "'missing'" in info.value.message


async def test_an_unserializable_answer_becomes_an_error(stelar_server, stelar_client):
    stelar_server.on_ack("bad", lambda ctx: object())
    with pytest.raises(AckError, match="not JSON-serializable"):
        await stelar_client.request("bad")


async def test_invalid_json_in_a_request_is_answered_with_an_error(stelar_server, stelar_client):
    stelar_server.on_ack("x", lambda ctx: 1)
    with pytest.raises(AckError) as info:
        await stelar_client.request("x", raw=b"{broken")
    assert info.value.code == ErrorCode.INVALID_JSON
    assert stelar_server.get_stats().invalid_messages == 1


async def test_server_asks_a_client(stelar_server, stelar_client):
    stelar_client.on_ack("whoami", lambda data: {"me": data})
    assert await stelar_server.request(stelar_client.id, "whoami", "x") == {"me": "x"}


async def test_server_request_errors_and_timeouts(stelar_server_factory, stelar_client_factory):
    clock = FakeClock()
    stelar_server = await stelar_server_factory(clock=clock)
    client = await stelar_client_factory(stelar_server)

    def failing(data):
        raise RuntimeError("client side failure")

    client.on_ack("fails", failing)
    with pytest.raises(AckError, match="client side failure"):
        await stelar_server.request(client.id, "fails")
    with pytest.raises(AckError) as info:
        await stelar_server.request(client.id, "unhandled")
    assert info.value.code == ErrorCode.NO_HANDLER

    never, asked = asyncio.Event(), asyncio.Event()

    async def hang(data):
        asked.set()
        await never.wait()

    client.on_ack("hang", hang)
    request = asyncio.ensure_future(stelar_server.request(client.id, "hang", timeout=0.05))
    await asked.wait()
    clock.advance(0.049)
    assert not request.done() and stelar_server.get_stats().pending_acks == 1
    clock.advance(0.001)
    with pytest.raises(AckTimeout, match=r"no answer to request 'hang' within 0\.05s"):
        await request
    assert stelar_server.get_stats().pending_acks == 0
    with pytest.raises(NotConnected):
        await stelar_server.request("no-such-client", "x")


async def test_ctx_request_asks_the_sender_back(stelar_server, stelar_client):
    @stelar_server.on_ack("confirm")
    async def confirm(ctx):
        return await ctx.request("are-you-sure", ctx.data)

    stelar_client.on_ack("are-you-sure", lambda data: data == "yes")
    assert await stelar_client.request("confirm", "yes") is True


async def test_pending_server_requests_are_bounded(stelar_server_factory, stelar_client_factory):
    server = await stelar_server_factory(max_pending_acks=3)
    client = await stelar_client_factory(server)
    release = asyncio.Event()
    arrived = []
    all_arrived = asyncio.Event()

    async def slow(data):
        arrived.append(data)
        if len(arrived) == 3:
            all_arrived.set()
        await release.wait()
        return data

    client.on_ack("slow", slow)
    first = [asyncio.ensure_future(server.request(client.id, "slow", n)) for n in range(3)]
    await asyncio.wait_for(all_arrived.wait(), 5)
    with pytest.raises(AckError) as info:
        await server.request(client.id, "slow", 99)
    assert info.value.code == ErrorCode.TOO_MANY_PENDING_ACKS
    release.set()
    assert await asyncio.gather(*first) == [0, 1, 2]


async def test_a_disconnect_fails_pending_server_requests(stelar_server, stelar_client):
    asked = asyncio.Event()

    async def hang(data):
        asked.set()
        await asyncio.Event().wait()

    stelar_client.on_ack("hang", hang)
    pending = asyncio.ensure_future(stelar_server.request(stelar_client.id, "hang"))
    await asyncio.wait_for(asked.wait(), 5)
    stelar_client.close()
    with pytest.raises(NotConnected):
        await pending


async def test_an_ack_response_with_an_unknown_id_gets_an_error_frame(stelar_server, stelar_client):
    stelar_client.send_frame(FrameType.ACK_RESPONSE, "x", dump_json({"ok": 1}), ack_id=12345)
    code, body = await stelar_client.next_error()
    assert code == ErrorCode.UNKNOWN_ACK
    assert "12345" in body["message"]
    assert stelar_server.get_stats().invalid_messages == 1
    stelar_server.on_ack("alive", lambda ctx: True)
    assert await stelar_client.request("alive") is True
