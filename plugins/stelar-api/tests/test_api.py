"""The server API on one node, over real HTTP on both ports it is served on (the WebSocket
port's HTTP side and health_port), with real clients receiving what it sends."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from api_support import KEY, KEYS, READ_ONLY_KEY, api, client_of, result
from prometheus_client.parser import text_string_to_metric_families

from stelar_core.testing import eventually
from stelar_core.testing.http import http_call

ROOMS = {"feed": {"history_size": 10}, "team:*": {"presence": True}}


@pytest.fixture(params=["ws port", "health_port"])
async def served(request, stelar_server_factory):
    """``make(**options) -> (server, port)``: a server with the API on, reached on the WebSocket
    port, or on health_port with no WebSocket transport at all."""

    async def make(**options):
        api_options = {"enabled": True, "keys": KEYS, **options.pop("api", {})}
        if request.param == "ws port":
            server = await stelar_server_factory(
                transports=["tcp", "ws"], api=api_options, rooms=ROOMS, **options
            )
            return server, server.get_port("ws")
        server = await stelar_server_factory(
            transports=["tcp", "http"], api=api_options, rooms=ROOMS, **options
        )
        assert "ws" not in server.addresses
        return server, server.get_port("http")

    return make


async def next_message(client):
    return await asyncio.wait_for(client.inbox.get(), 5)


async def test_sending_commands_reach_clients(served):
    server, port = await served()
    ann, bob = await client_of(server, "lobby"), await client_of(server, "lobby")
    assert (
        await result(
            port, "publish", {"room": "lobby", "event": "news", "data": {"n": 1}, "exclude": [ann.id]}
        )
        == {}
    )
    assert await next_message(bob) == ("news", {"n": 1})
    await result(port, "broadcast", {"event": "alert", "data": "all"})
    assert await next_message(ann) == ("alert", "all") and await next_message(bob) == ("alert", "all")
    await result(port, "send", {"client": ann.id, "event": "private", "data": 7})
    assert await next_message(ann) == ("private", 7)
    raw = bytes(range(256))
    await result(
        port, "publish", {"room": "lobby", "event": "blob", "binary": base64.b64encode(raw).decode()}
    )
    assert await next_message(ann) == ("blob", raw) and await next_message(bob) == ("blob", raw)
    assert ann.inbox.empty() and bob.inbox.empty()  # ann was excluded from the news, bob sent nothing private
    for client in (ann, bob):
        await client.disconnect()


async def test_join_leave_and_disconnect_act_on_a_client(served):
    server, port = await served()
    ann = await client_of(server)
    await result(port, "join", {"client": ann.id, "room": "team:red"})
    assert server.get_room_members("team:red") == [ann.id]
    await result(port, "publish", {"room": "team:red", "event": "briefing"})
    assert await next_message(ann) == ("briefing", None)  # a real membership
    await result(port, "leave", {"client": ann.id, "room": "team:red"})
    assert server.get_room_members("team:red") == []
    closed = asyncio.get_running_loop().create_future()
    ann.on("disconnect", lambda info: closed.done() or closed.set_result(info))
    await result(port, "disconnect", {"client": ann.id, "code": 4001, "reason": "plan expired"})
    info = await asyncio.wait_for(closed, 5)
    assert (info["code"], info["reason"]) == (4001, "plan expired")


async def test_commands_about_a_client_nobody_has_answer_404(served):
    _, port = await served()
    for command, params in (
        ("send", {"client": "ghost", "event": "e"}),
        ("disconnect", {"client": "ghost"}),
        ("join", {"client": "ghost", "room": "r"}),
        ("leave", {"client": "ghost", "room": "r"}),
        ("info", {"client": "ghost"}),
    ):
        status, _, answer = await api(port, command, params)
        assert status == 404, command
        assert answer["error"]["code"] == "client_not_found" and "'ghost'" in answer["error"]["message"]


async def test_reads_of_rooms_members_clients_info_stats_presence_history(served):
    server, port = await served()
    ann, bob = await client_of(server, "lobby", "team:red"), await client_of(server, "lobby", "feed")
    for n in range(3):
        server.to("feed", "tick", n)
    for _ in range(3):
        await next_message(bob)
    assert await result(port, "rooms") == {"rooms": sorted(["lobby", "team:red", "feed"])}
    assert await result(port, "members", {"room": "lobby"}) == {"members": sorted([ann.id, bob.id])}
    clients = await result(port, "clients", {"room": "feed"})
    assert clients["total"] == 1 and [c["id"] for c in clients["clients"]] == [bob.id]
    assert (await result(port, "clients", {"limit": 1}))["total"] == 2
    info = await result(port, "info", {"client": ann.id})
    assert info["transport"] == "tcp" and info["address"] == "127.0.0.1"
    assert info["rooms"] == ["lobby", "team:red"] and info["metadata"] == {}
    assert abs(info["connected_at"] - __import__("time").time()) < 60
    stats = await result(port, "stats")
    assert stats["node_count"] == 1 and stats["totals"]["active_connections"] == 2
    assert stats["connections_by_transport"] == {"tcp": 2} and stats["total_rooms"] == 3
    await eventually(lambda: _presence_is(port, "team:red", {ann.id: None}), what="ann in the presence")
    page = await result(port, "history", {"room": "feed", "since": 1, "limit": 5})
    assert [(p["offset"], p["data"]) for p in page["publications"]] == [(2, 1), (3, 2)]
    assert page["position"]["offset"] == 3
    status, _, answer = await api(port, "history", {"room": "lobby"})
    assert status == 404 and answer["error"]["code"] == "no_history"
    status, _, answer = await api(port, "presence", {"room": "lobby"})
    assert status == 404 and answer["error"]["code"] == "no_presence"
    for client in (ann, bob):
        await client.disconnect()


async def _presence_is(port, room, expected):
    return (await result(port, "presence", {"room": room}))["members"] == expected


async def test_a_batch_runs_in_order_and_answers_each_command(served):
    server, port = await served()
    ann = await client_of(server, "lobby")
    batch = {
        "commands": [
            {"method": "publish", "params": {"room": "lobby", "event": "n", "data": 1}},
            {"method": "send", "params": {"client": "ghost", "event": "n"}},
            {"method": "publish", "params": {"room": "lobby", "event": "n", "data": 2}},
            {"method": "members", "params": {"room": "lobby"}},
        ]
    }
    status, _, answer = await api(port, "batch", batch)
    assert status == 200
    first, missing, third, members = answer["results"]
    assert first == {"result": {}} and third == {"result": {}}
    assert missing["status"] == 404 and missing["error"]["code"] == "client_not_found"
    assert members == {"result": {"members": [ann.id]}}
    assert [await next_message(ann) for _ in range(2)] == [("n", 1), ("n", 2)]
    await ann.disconnect()


async def test_a_batch_with_one_bad_command_runs_none(served):
    server, port = await served()
    ann = await client_of(server, "lobby")
    batch = {
        "commands": [
            {"method": "publish", "params": {"room": "lobby", "event": "n"}},
            {"method": "publish", "params": {"room": "lobby", "event": "n"}},
            {"method": "publish", "params": {"room": 5, "event": "n"}},
        ]
    }
    status, _, answer = await api(port, "batch", batch)
    assert status == 400 and answer["error"]["field"] == "commands[2].params.room"
    status, _, answer = await api(port, "batch", {"commands": [{"method": "explode"}]})
    assert status == 400 and answer["error"] == {
        "code": "unknown_command",
        "message": answer["error"]["message"],
        "field": "commands[0].method",
    }
    assert "'explode'" in answer["error"]["message"] and "publish" in answer["error"]["message"]
    status, _, answer = await api(port, "batch", {"commands": [{"method": "rooms"}] * 101})
    assert status == 400 and "at most 100" in answer["error"]["message"]
    await result(port, "publish", {"room": "lobby", "event": "marker"})
    assert await next_message(ann) == ("marker", None)  # nothing of the refused batches came first
    await ann.disconnect()


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"event": "e"}, "params.room", "room is required"),
        ({"room": "", "event": "e"}, "params.room", "non-empty"),
        ({"room": "r" * 300, "event": "e"}, "params.room", "at most"),
        ({"room": "r", "event": 3}, "params.event", "non-empty string"),
        ({"room": "r", "event": "e", "colour": "red"}, "params.colour", "unknown parameter"),
        ({"room": "r", "event": "e", "exclude": "x"}, "params.exclude", "list"),
        ({"room": "r", "event": "e", "binary": "***"}, "params.binary", "base64"),
        ({"room": "r", "event": "e", "data": 1, "binary": ""}, "params.binary", "not both"),
    ],
)
async def test_bad_parameters_get_400_naming_the_field(served, params, field, says):
    _, port = await served()
    status, _, answer = await api(port, "publish", params)
    assert status == 400 and answer["error"]["field"] == field and says in answer["error"]["message"]


async def test_bad_bodies_are_refused_and_the_server_carries_on(served):
    server, port = await served(api={"max_body_size": 100})
    ann = await client_of(server, "lobby")
    for body, status, says in (
        (b"", 400, "empty"),
        (b"{not json", 400, "not JSON"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"room": "r", "event": "e", "data": "x" * 200}).encode(), 413, "at most 100"),
    ):
        answered, _, answer = await api(port, "publish", body=body)
        assert answered == status and says in answer["error"]["message"], body
    answered, _, answer = await api(port, "publish", {}, headers={"Content-Type": "text/plain"})
    assert answered == 415 and answer["error"]["code"] == "unsupported_media_type"
    # Past the server's own cap (max_frame_size) the body is not even waited for.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = server.config.max_frame_size + 1
    writer.write(f"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 413 ")
    writer.close()
    status, _, body = await http_call(
        port, "/api/nonsense", "POST", {"Authorization": f"Bearer {KEY}"}, b"{}"
    )
    assert status == 404 and b"/api/nonsense" in body
    assert (await http_call(port, "/api/publish", "GET"))[0] == 405
    await result(port, "publish", {"room": "lobby", "event": "still-here"})
    assert await next_message(ann) == ("still-here", None)
    await ann.disconnect()


async def test_keys_missing_wrong_read_only_and_rotated(served):
    server, port = await served()
    status, headers, answer = await api(port, "rooms", key=None)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in answer["error"]["message"]
    status, _, answer = await api(port, "rooms", key="not-a-key-of-this-server")
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    status, _, answer = await api(port, "rooms", headers={"Authorization": f"Basic {KEY}"}, key=None)
    assert status == 401
    # A read-only key reads, and is refused every change.
    assert await result(port, "rooms", key=READ_ONLY_KEY) == {"rooms": []}
    status, _, answer = await api(port, "publish", {"room": "r", "event": "e"}, key=READ_ONLY_KEY)
    assert (
        status == 403
        and answer["error"]["code"] == "read_only_key"
        and "'dash'" in answer["error"]["message"]
    )
    batch = {"commands": [{"method": "rooms"}, {"method": "broadcast", "params": {"event": "e"}}]}
    status, _, answer = await api(port, "batch", batch, key=READ_ONLY_KEY)
    assert status == 403 and answer["error"]["field"] == "commands[1].method"
    # Rotation: a new key added while the server runs works at once; the removed one stops.
    new_key = "the-next-key-0123456789"
    server.update_config(api_keys=[new_key, READ_ONLY_KEY])
    assert await result(port, "rooms", key=new_key) == {"rooms": []}
    assert (await api(port, "rooms", key=KEY))[0] == 401
    assert server.get_config()["api"]["keys"] != [new_key, READ_ONLY_KEY]  # secrets are not shown


async def test_the_rate_limit_is_per_key_and_counts_each_command(served):
    _, port = await served(api={"rate_limit": {"max_points": 5, "window": 60}})
    for _ in range(3):
        await result(port, "rooms")
    batch = {"commands": [{"method": "rooms"}, {"method": "rooms"}, {"method": "rooms"}]}
    status, headers, answer = await api(port, "batch", batch)  # 3 + 3 > 5
    assert status == 429 and answer["error"]["code"] == "rate_limited" and int(headers["retry-after"]) >= 1
    assert "'ops'" in answer["error"]["message"]
    for _ in range(2):
        await result(port, "rooms")  # the rest of the bucket: 5 in all
    assert (await api(port, "rooms"))[0] == 429
    assert await result(port, "rooms", key=READ_ONLY_KEY) == {"rooms": []}  # another key's bucket


async def test_failed_keys_are_throttled_per_address(served):
    _, port = await served(api={"failed_auth_limit": {"max_points": 3, "window": 600}})
    for _ in range(3):
        assert (await api(port, "rooms", key="guessing-0123456789"))[0] == 401
    status, headers, answer = await api(port, "rooms")  # even the right key, from this address
    assert status == 429 and answer["error"]["code"] == "too_many_failures" and "retry-after" in headers


async def test_cross_origin_pages_are_refused_unless_allowed(served):
    _, port = await served()
    evil = {"Origin": "http://evil.example"}
    status, _, answer = await api(port, "rooms", headers=evil)
    assert status == 403 and answer["error"]["code"] == "cross_origin"
    same = {"Origin": f"http://127.0.0.1:{port}", "Host": f"127.0.0.1:{port}"}
    assert (await api(port, "rooms", headers=same))[0] == 200
    _, allowed_port = await served(api={"allowed_origins": ["http://dash.example"]})
    dash = {"Origin": "http://dash.example"}
    status, headers, _ = await api(allowed_port, "rooms", headers=dash)
    assert status == 200 and headers["access-control-allow-origin"] == "http://dash.example"
    status, headers, _ = await http_call(
        allowed_port, "/api/rooms", "OPTIONS", {**dash, "Access-Control-Request-Method": "POST"}
    )
    assert status == 204 and "Authorization" in headers["access-control-allow-headers"]
    assert (await api(allowed_port, "rooms", headers=evil))[0] == 403


async def test_answers_are_never_cached_or_framed(served):
    _, port = await served()
    _, headers, _ = await api(port, "rooms")
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


async def test_every_outcome_is_counted_in_metrics(served):
    _, port = await served()
    await result(port, "rooms")
    await api(port, "rooms", key=None)
    await api(port, "publish", {"room": "r", "event": "e"}, key=READ_ONLY_KEY)
    await api(port, "publish", {"room": ""})
    await api(port, "info", {"client": "ghost"})
    _, _, body = await http_call(port, "/metrics")
    samples = {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "stelar_api_requests_total"
    }
    assert samples == {"ok": 1, "unauthorized": 1, "forbidden": 1, "bad_request": 1, "not_found": 1}


async def test_off_by_default(stelar_server_factory):
    server = await stelar_server_factory(transports=["ws"], api={"keys": KEYS})
    status, _, _ = await api(server.get_port("ws"), "rooms")
    assert status == 404


async def _raw_post(port, path, key, body):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    answer = await reader.read()
    writer.close()
    return int(answer.split(b" ", 2)[1])


async def test_a_flood_of_requests_is_limited_and_the_server_carries_on(served):
    server, port = await served(api={"rate_limit": {"max_points": 50, "window": 600}})
    ann = await client_of(server, "lobby")
    body = json.dumps({"room": "lobby", "event": "flood"}).encode()
    statuses = await asyncio.wait_for(
        asyncio.gather(*(_raw_post(port, "/api/publish", KEY, body) for _ in range(200))), 60
    )
    assert statuses.count(200) == 50 and statuses.count(429) == 150
    assert [await next_message(ann) for _ in range(50)] == [("flood", None)] * 50
    assert server.get_stats().counters["api_requests:rate_limited"] == 150
    # Other clients and keys are served as before.
    assert await result(port, "members", {"room": "lobby"}, key=READ_ONLY_KEY) == {"members": [ann.id]}
    await ann.disconnect()
