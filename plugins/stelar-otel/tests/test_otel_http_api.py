"""The server API (stelar-api) continues its caller's trace: a ``POST /api/publish`` with a
``traceparent`` header is processed in a span that is its child, and the room send it makes is
a child of that span. A header that is not a traceparent is ignored and counted."""

from __future__ import annotations

import json

import pytest

from stelar_core import StelarServer
from stelar_core.testing import connect_client, eventually
from stelar_core.testing.http import http_call

pytestmark = pytest.mark.one_loop
KEY = "otel-test-key-0123456789"
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def publish(port: int, headers: dict[str, str]) -> int:
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}", **headers}
    body = json.dumps({"room": "chat:1", "event": "news", "data": 1}).encode()
    status, _, _ = await http_call(port, "/api/publish", "POST", sent, body)
    return status


async def test_a_publish_through_the_server_api_continues_the_callers_trace(exported):
    server = StelarServer(
        transports=["ws"],
        host="127.0.0.1",
        port=0,
        rooms={"chat:*": {}},
        api={"enabled": True, "keys": [{"key": KEY, "name": "ops"}]},
        otel={"enabled": True},
    )
    await server.start()
    port = server.get_port("ws")
    member = await connect_client(server, "ws")
    await member.join("chat:1")
    try:
        assert await publish(port, {"traceparent": CALLER}) == 200
        assert (await member.next_event()).event == "news"
        await eventually(lambda: any(s.name == "process chat:*" for s in exported()), what="the delivery")
        spans = {span.name: span for span in exported() if span.name != "connect"}
        process, send = spans["process POST /api/publish"], spans["send chat:*"]
        assert f"{process.context.trace_id:032x}" == CALLER.split("-")[1]
        assert f"{process.parent.span_id:016x}" == CALLER.split("-")[2]
        assert process.attributes["stelar.transport"] == "http"
        assert send.parent.span_id == process.context.span_id
        assert spans["process chat:*"].parent.span_id == send.context.span_id

        assert await publish(port, {"traceparent": "garbage"}) == 200
        assert (await member.next_event()).event == "news"
        assert server.get_stats().counters["trace_context_invalid"] == 1
        assert await publish(port, {"Authorization": "Bearer wrong"}) == 401
        await eventually(
            lambda: any(s.attributes.get("error.type") == "401" for s in exported()), what="the refusal"
        )
    finally:
        member.close()
        await server.stop()
