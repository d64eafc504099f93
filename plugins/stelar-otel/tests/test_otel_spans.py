"""Spans of what a server processes, through real TCP connections, in the SDK's in-memory
exporter: one CONSUMER span per event or request around its handler (the handler's own spans its
children, across awaits), refusals and handler errors marked on it, and nothing of OpenTelemetry
imported while tracing is off."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from stelar_core import AckError, ConfigError, ErrorCode, NotConnected, StelarServer
from stelar_core.plugin_api import FrameType, encode_frame
from stelar_core.testing import connect_client, eventually

pytestmark = pytest.mark.one_loop


@pytest.fixture
async def traced():
    servers: list[StelarServer] = []

    async def start(**options) -> StelarServer:
        options.setdefault("otel", {"enabled": True})
        server = StelarServer(transports=["tcp"], host="127.0.0.1", tcp_port=0, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def named(spans, name):
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


async def test_an_event_is_one_consumer_span_around_its_handler(traced, exported):
    server = await traced()
    handled = asyncio.Event()

    @server.on("chat")
    def chat(ctx):
        with trace.get_tracer("app").start_as_current_span("store message"):
            handled.set()

    client = await connect_client(server, "tcp")
    client.emit("chat", {"text": "hello"})
    await asyncio.wait_for(handled.wait(), 5)
    await _ended(exported, 2)
    process, store = named(exported(), "process chat"), named(exported(), "store message")
    assert process.kind is SpanKind.CONSUMER
    assert dict(process.attributes) == {
        "messaging.system": "stelar",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "chat",
        "messaging.client.id": client.id,
        "messaging.message.body.size": len(b'{"text":"hello"}'),
        "stelar.transport": "tcp",
    }
    assert store.parent is not None and store.parent.span_id == process.context.span_id
    assert store.context.trace_id == process.context.trace_id
    assert process.status.status_code is StatusCode.UNSET
    client.close()


async def test_an_event_without_a_handler_of_its_own_has_one_span_name(traced, exported):
    server = await traced()
    server.on("chat", lambda ctx: None)
    client = await connect_client(server, "tcp")
    for n in range(3):
        client.emit(f"made-up-{n}", None)
    client.emit("chat", None)
    await _ended(exported, 4)
    assert [span.name for span in processed(exported)] == ["process (undeclared)"] * 3 + ["process chat"]
    client.close()


async def test_an_async_handlers_spans_are_children_across_its_awaits(traced, exported):
    server = await traced()

    @server.on_ack("lookup")
    async def lookup(ctx):
        await asyncio.sleep(0)
        with trace.get_tracer("app").start_as_current_span("query"):
            await asyncio.sleep(0)
        return {"found": ctx.data}

    client = await connect_client(server, "tcp")
    assert await client.request("lookup", 7) == {"found": 7}
    await _ended(exported, 2)
    process, query = named(exported(), "process lookup"), named(exported(), "query")
    assert process.attributes["messaging.operation.name"] == "request"
    assert query.parent is not None and query.parent.span_id == process.context.span_id
    assert process.end_time >= query.end_time  # the span lasts as long as the handler
    client.close()


async def test_refusals_are_marked_on_the_span(traced, exported):
    server = await traced(max_payload_size=16, rate_limit={"max_points": 1, "window": 60})
    server.on("chat", lambda ctx: None)
    client = await connect_client(server, "tcp")
    client.emit("chat", "x" * 40)  # over max_payload_size
    client.emit("chat", 1)
    client.emit("chat", 2)  # over the rate limit (an oversized message is not counted)
    await _ended(exported, 3)
    marks = [
        (span.name, span.attributes.get("error.type"), span.status.status_code)
        for span in processed(exported)
    ]
    assert marks == [
        ("process chat", "payload_too_large", StatusCode.ERROR),
        ("process chat", None, StatusCode.UNSET),
        ("process chat", "rate_limited", StatusCode.ERROR),
    ]
    client.close()


async def test_a_handlers_error_is_recorded_on_the_span(traced, exported):
    server = await traced()

    @server.on_ack("fail")
    def fail(ctx):
        raise ValueError("no such thing")

    client = await connect_client(server, "tcp")
    with pytest.raises(AckError) as refused:
        await client.request("fail")
    assert refused.value.code == ErrorCode.HANDLER_ERROR
    await _ended(exported, 1)
    (span,) = processed(exported)
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "ValueError"
    assert [event.name for event in span.events] == ["exception", "settle"]
    client.close()


async def test_a_handshake_is_a_short_span_and_so_is_a_refusal(traced, exported):
    server = await traced(max_connections=1)

    @server.use
    def check(ctx, next):
        with trace.get_tracer("app").start_as_current_span("check token"):
            if ctx.auth.get("token") == "ok":
                next()

    client = await connect_client(server, "tcp", auth={"token": "ok"})
    with pytest.raises(NotConnected, match="server_full"):
        await connect_client(server, "tcp")  # over max_connections
    client.close()
    await eventually(lambda: server.get_stats().active_connections == 0, what="the client gone")
    with pytest.raises(NotConnected):
        await connect_client(server, "tcp", auth={"token": "bad"})
    await eventually(lambda: len(exported()) == 5, what="five spans")
    connects = [span for span in exported() if span.name == "connect"]
    assert [(span.kind, span.attributes.get("error.type")) for span in connects] == [
        (SpanKind.SERVER, None),
        (SpanKind.SERVER, "server_full"),
        (SpanKind.SERVER, "unauthorized"),
    ]
    assert connects[0].attributes["stelar.transport"] == "tcp"
    assert "stelar.transport" not in connects[1].attributes  # refused before any protocol
    checks = [span for span in exported() if span.name == "check token"]
    assert [span.parent.span_id for span in checks] == [
        connects[0].context.span_id,
        connects[2].context.span_id,
    ]


async def test_a_room_send_and_its_delivery_are_spans_of_the_handlers_trace(traced, exported):
    server = await traced(rooms={"chat:*": {}})
    server.on("say", lambda ctx: ctx.to("chat:1", "said", ctx.data))
    members = [await connect_client(server, "tcp") for _ in range(2)]
    for member in members:
        await member.join("chat:1")
    members[0].emit("say", "hi")
    for member in members:
        assert (await member.next_event()).data == "hi"
    await _ended(exported, 3)
    process, send, deliver = (
        named(processed(exported), name) for name in ("process say", "send chat:*", "process chat:*")
    )
    assert send.kind is SpanKind.PRODUCER and send.parent.span_id == process.context.span_id
    assert deliver.kind is SpanKind.CONSUMER and deliver.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in deliver.links] == [send.context.span_id]
    assert deliver.attributes["stelar.recipients"] == 2
    assert deliver.attributes["messaging.destination.name"] == "chat:1"


async def test_a_clients_unsampled_context_is_honoured_nothing_recorded_or_carried(traced, exported):
    """The SDK's default sampler follows the parent: a client's context not sampled (flags 00)
    makes nothing recorded on the server, and its sends carry nothing on."""
    server = await traced()
    server.on("say", lambda ctx: ctx.to("lobby", "said", ctx.data))
    member = await connect_client(server, "tcp")
    await member.join("lobby")
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    member.send_raw(encode_frame(FrameType.JSON, "say", b'"hi"', trace=unsampled))
    assert (await member.next_event()).data == "hi"
    sampled = unsampled[:-2] + "01"
    member.send_raw(encode_frame(FrameType.JSON, "say", b'"again"', trace=sampled))
    assert (await member.next_event()).data == "again"
    await _ended(exported, 3)
    assert {f"{span.context.trace_id:032x}" for span in processed(exported)} == {sampled.split("-")[1]}
    assert sorted(span.name for span in processed(exported)) == [
        "process (room)",
        "process say",
        "send (room)",
    ]


async def test_sample_ratio_leaves_out_what_arrives_untraced_and_its_handlers_spans(traced, exported):
    """sample_ratio 0: no span for an event without a context, none for what its handler starts
    (the unsampled context is current), and its send carries nothing; an event with a client's
    sampled context is still traced."""
    server = await traced(otel={"enabled": True, "sample_ratio": 0.0})
    handled = []

    @server.on("say")
    def say(ctx):
        with trace.get_tracer("app").start_as_current_span("handler work") as span:
            handled.append(span.is_recording())
        ctx.to("lobby", "said", ctx.data)

    member = await connect_client(server, "tcp")
    await member.join("lobby")
    member.emit("say", "untraced")
    assert (await member.next_event()).data == "untraced"
    sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    member.send_raw(encode_frame(FrameType.JSON, "say", b'"traced"', trace=sampled))
    assert (await member.next_event()).data == "traced"
    await _ended(exported, 4)
    assert handled == [False, True]
    assert {f"{span.context.trace_id:032x}" for span in exported()} == {sampled.split("-")[1]}
    assert sorted(span.name for span in exported()) == [
        "handler work",
        "process (room)",
        "process say",
        "send (room)",
    ]


@pytest.mark.parametrize("ratio", [-0.1, 1.5, "half", True])
def test_a_sample_ratio_out_of_range_is_refused_naming_the_option(ratio):
    with pytest.raises(ConfigError, match=r"otel.sample_ratio.*expected a number from 0 to 1"):
        StelarServer(transports=["tcp"], otel={"enabled": True, "sample_ratio": ratio})


@pytest.mark.parametrize("enabled", [False, True])
def test_off_nothing_of_opentelemetry_is_imported(enabled):
    """OpenTelemetry made unimportable: a server with tracing off runs and answers; with it on,
    it is what the server imports (the check can fail)."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # any import of it now fails
        from stelar_core import StelarServer
        from stelar_core.testing import connect_client

        async def main():
            server = StelarServer(transports=["memory"], otel={{"enabled": {enabled}}})
            server.on_ack("ping", lambda ctx: "pong")
            await server.start()
            client = await connect_client(server, "memory")
            assert await client.request("ping") == "pong"
            await server.stop()
            print("served", "stelar_otel.tracer" in sys.modules)

        asyncio.run(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    if enabled:
        assert result.returncode != 0 and "opentelemetry" in result.stderr, result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "served False"


def processed(exported):
    """The spans ended, without the handshakes' (``connect``)."""
    return [span for span in exported() if span.name != "connect"]


async def _ended(exported, count: int) -> None:
    await eventually(lambda: len(processed(exported)) >= count, what=f"{count} spans ended")
