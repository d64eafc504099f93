"""The tracing seam (stelar_core.tracing) with a tracer that records what the hub tells it: one
scope per event or request, current while the gate and the handler run (across an async
handler's awaits too), ended once; refusals, handler errors and answers told to it; the trace
context a client attaches, checked; a scope per handshake and per refused connection; sends and
their deliveries; at most one tracer."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from stelar_core import AckError, ConfigError, ConnectionRefused, NotConnected, StelarServer
from stelar_core.plugin_api import hookimpl
from stelar_core.protocol import DisconnectCode, FrameType, encode_frame
from stelar_core.protocol.frames import TRACED
from stelar_core.providers import Delivery
from stelar_core.testing import connect_client, eventually
from stelar_core.tracing import UNDECLARED, traceparent

CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("current", default=None)


class RecordingScope:
    recording = True

    def __init__(self, log: list, name: str) -> None:
        self.log, self.name = log, name

    def activate(self):
        self.log.append(("activate", self.name))
        return CURRENT.set(self.name)

    def deactivate(self, token):
        CURRENT.reset(token)
        self.log.append(("deactivate", self.name))

    def refused(self, error_type):
        self.log.append(("refused", self.name, error_type))

    def failed(self, error):
        self.log.append(("failed", self.name, type(error).__name__))

    def settled(self):
        self.log.append(("settled", self.name))

    def end(self):
        self.log.append(("end", self.name))


class RecordingSend:
    def __init__(self, log: list, context: str | None) -> None:
        self.log, self.context = log, context

    def end(self):
        self.log.append(("send ended", self.context))


class RecordingDelivery:
    def __init__(self, log: list, parent: str) -> None:
        self.log, self.parent = log, parent

    def end(self, recipients):
        self.log.append(("delivered", self.parent, recipients))


class RecordingTracer:
    """Processing goes to ``log``, handshakes to ``connects``, sends and deliveries to ``sends``.
    ``sampled``: whether a send is recorded (and so carries a context to its deliveries)."""

    def __init__(self, sampled: bool = True) -> None:
        self.log: list = []
        self.connects: list = []
        self.sends: list = []
        self.parents: list = []
        self.sampled = sampled
        self.sent = 0

    def process(self, event, request, client_id, protocol, size, parent):
        self.log.append(("process", event, request, protocol, size))
        self.parents.append(parent)
        return RecordingScope(self.log, event)

    def connect(self, protocol):
        self.connects.append(("connect", protocol))
        return RecordingScope(self.connects, "connect")

    def send(self, destination, room, event):
        self.sent += 1
        context = f"00-{self.sent:032x}-{1:016x}-01" if self.sampled else None
        self.sends.append(("send", destination, room, event))
        return RecordingSend(self.sends, context)

    def deliver(self, destination, room, parent):
        self.sends.append(("deliver", destination, room, parent))
        return RecordingDelivery(self.sends, parent)


class TracingPlugin:
    def __init__(self, name: str, tracer: RecordingTracer | None) -> None:
        self.name, self.tracer = name, tracer

    @hookimpl
    def stelar_register_tracers(self, register):
        register(self.name, lambda context: self.tracer)


async def traced_server(tracer: RecordingTracer, **options) -> StelarServer:
    server = StelarServer(transports=["memory"], plugins=[TracingPlugin("recording", tracer)], **options)
    await server.start()
    return server


async def test_an_event_is_processed_in_its_scope_and_ends_it():
    tracer = RecordingTracer()
    server = await traced_server(tracer)
    seen = []
    server.on("chat", lambda ctx: seen.append(("handler", CURRENT.get())))
    client = await connect_client(server, "memory")
    client.emit("chat", "hi")
    await _until(lambda: ("end", "chat") in tracer.log)
    assert tracer.log == [
        ("process", "chat", False, "memory", len(b'"hi"')),
        ("activate", "chat"),
        ("deactivate", "chat"),
        ("end", "chat"),
    ]
    assert seen == [("handler", "chat")]
    assert CURRENT.get() is None
    await server.stop()


async def test_an_async_handler_keeps_its_scope_across_its_awaits():
    tracer = RecordingTracer()
    server = await traced_server(tracer)
    seen = []

    @server.on_ack("slow")
    async def slow(ctx):
        await asyncio.sleep(0)
        seen.append(CURRENT.get())
        return "done"

    client = await connect_client(server, "memory")
    assert await client.request("slow") == "done"
    await _until(lambda: ("end", "slow") in tracer.log)
    assert seen == ["slow"]
    assert tracer.log[0] == ("process", "slow", True, "memory", len(b"null"))
    assert tracer.log.count(("end", "slow")) == 1
    assert tracer.log.index(("settled", "slow")) < tracer.log.index(("end", "slow"))
    assert [entry[0] for entry in tracer.log].count("activate") == [entry[0] for entry in tracer.log].count(
        "deactivate"
    )
    await server.stop()


async def test_a_refused_message_is_processed_in_its_scope_too():
    tracer = RecordingTracer()
    server = await traced_server(tracer, max_payload_size=4)
    server.on_ack("big", lambda ctx: None)
    client = await connect_client(server, "memory")
    with pytest.raises(AckError):
        await client.request("big", "x" * 10)
    assert tracer.log == [
        ("process", "big", True, "memory", 12),
        ("activate", "big"),
        ("refused", "big", "payload_too_large"),
        ("settled", "big"),
        ("deactivate", "big"),
        ("end", "big"),
    ]
    await server.stop()


async def test_a_handlers_error_is_told_to_its_scope_then_its_answer():
    tracer = RecordingTracer()
    server = await traced_server(tracer)

    @server.on_ack("boom")
    def boom(ctx):
        raise KeyError("missing")

    client = await connect_client(server, "memory")
    with pytest.raises(AckError):
        await client.request("boom")
    await _until(lambda: ("end", "boom") in tracer.log)
    marks = [entry for entry in tracer.log if entry[0] in ("failed", "refused")]
    assert marks == [("failed", "boom", "KeyError")]  # (the handler_error answer is not a refusal)
    await server.stop()


async def test_a_name_no_handler_is_registered_for_is_not_passed_on():
    """Names a client makes up would make one span name each: they reach the tracer as one."""
    tracer = RecordingTracer()
    server = await traced_server(tracer)
    server.on("chat", lambda ctx: None)
    client = await connect_client(server, "memory")
    for event in ("made-up-1", "made-up-2", "chat"):
        client.emit(event, None)
    await _until(lambda: ("end", "chat") in tracer.log)
    processed = [entry[1] for entry in tracer.log if entry[0] == "process"]
    assert processed == [UNDECLARED, UNDECLARED, "chat"]
    await server.stop()


def test_a_plugin_whose_options_ask_for_no_tracing_gives_none():
    server = StelarServer(transports=["memory"], plugins=[TracingPlugin("off", None)])
    assert server.hub.gate.message == server.hub.gate._message  # (the untraced path itself)


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_the_welcome_says_the_server_traces_and_a_clients_context_reaches_the_tracer():
    tracer = RecordingTracer()
    server = await traced_server(tracer)
    server.on("chat", lambda ctx: None)
    server.on_ack("ask", lambda ctx: "yes")
    client = await connect_client(server, "memory")
    assert client.welcome["trace"] is True
    assert client.session.server_traces
    client.session.emit("chat", 1, trace=TRACEPARENT)
    assert client.session.request("ask", trace=TRACEPARENT) is not None
    client._flush()
    client.emit("chat", 2)  # without one
    await _until(lambda: len(tracer.parents) == 3)
    assert tracer.parents == [TRACEPARENT, TRACEPARENT, None]
    assert server.get_stats().counters.get("trace_context_invalid", 0) == 0
    await server.stop()


async def test_a_server_that_does_not_trace_says_nothing_and_the_client_sends_no_context():
    server = StelarServer(transports=["memory"])
    await server.start()
    client = await connect_client(server, "memory")
    assert "trace" not in client.welcome
    client.session.emit("chat", 1, trace=TRACEPARENT)
    (frame,) = client.session.data_to_send()
    assert frame[0] == FrameType.JSON  # no TRACED bit: an older server would not read it
    await server.stop()


@pytest.mark.parametrize(
    "context",
    [
        b"",
        b"not a traceparent",
        b"00-" + b"0" * 32 + b"-b7ad6b7169203331-01",  # all-zero trace id
        b"00-0af7651916cd43dd8448eb211c80319c-" + b"0" * 16 + b"-01",  # all-zero parent id
        b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
        TRACEPARENT.upper().encode(),  # upper-case hex
        TRACEPARENT.encode() + b"-extra",  # version 00 has exactly four fields
        b"\xff" * 55,
        TRACEPARENT.encode() + b"x" * 200,  # oversized
    ],
)
async def test_a_malformed_trace_context_is_ignored_and_counted_and_the_message_goes_on(context):
    tracer = RecordingTracer()
    server = await traced_server(tracer)
    seen = []
    server.on("chat", lambda ctx: seen.append(ctx.data))
    client = await connect_client(server, "memory")
    traced = bytes((FrameType.JSON | TRACED, 0, 4)) + b"chat" + bytes((len(context),)) + context + b"1"
    client.send_raw(traced)
    client.emit("chat", 2)
    await _until(lambda: seen == [1, 2])
    assert tracer.parents == [None, None]
    assert server.get_stats().counters["trace_context_invalid"] == 1
    await server.stop()


async def test_a_later_traceparent_version_with_more_fields_is_taken():
    later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more"
    assert traceparent(later.encode()) == later


async def test_the_handshake_is_a_scope_the_middleware_runs_in_and_refusals_are_told():
    tracer = RecordingTracer()
    server = await traced_server(tracer, max_connections=1)
    inside = []

    async def middleware(ctx, next_):
        inside.append(CURRENT.get())
        if ctx.auth.get("token") != "ok":
            raise ConnectionRefused("unauthorized", "bad token", DisconnectCode.POLICY_VIOLATION)
        await next_()

    server.use(middleware)
    client = await connect_client(server, "memory", auth={"token": "ok"})
    assert inside == ["connect"]
    # Current while the middleware runs: entered, left at its await, entered again, ended once.
    assert tracer.connects == [
        ("connect", "memory"),
        ("activate", "connect"),
        ("deactivate", "connect"),
        ("activate", "connect"),
        ("deactivate", "connect"),
        ("end", "connect"),
    ]
    tracer.connects.clear()
    with pytest.raises(ConnectionRefused):  # over max_connections: refused before any frame
        await connect_client(server, "memory")
    assert tracer.connects == [("connect", None), ("refused", "connect", "server_full"), ("end", "connect")]
    client.close()
    await _until(lambda: not server.hub.directory.all)
    tracer.connects.clear()
    with pytest.raises(NotConnected, match="bad token"):
        await connect_client(server, "memory", auth={"token": "no"})
    assert ("refused", "connect", "unauthorized") in tracer.connects
    assert tracer.connects[-1] == ("end", "connect")
    await server.stop()


async def test_a_room_send_carries_its_context_to_the_delivery_with_its_recipient_count():
    tracer = RecordingTracer()
    server = await traced_server(tracer, rooms={"chat:*": {}})
    members = [await connect_client(server, "memory") for _ in range(3)]
    for member in members:
        await member.join("chat:1")
    server.to("chat:1", "said", "hi")
    server.broadcast("everyone", 1)
    for member in members:
        await member.next_event()
    await _until(lambda: len(tracer.sends) == 8)
    first, second = f"00-{1:032x}-{1:016x}-01", f"00-{2:032x}-{1:016x}-01"
    assert tracer.sends == [
        ("send", "chat:*", "chat:1", "said"),
        ("deliver", "chat:*", "chat:1", first),
        ("delivered", first, 3),
        ("send ended", first),
        ("send", "(everyone)", None, "everyone"),
        ("deliver", "(everyone)", None, second),
        ("delivered", second, 3),
        ("send ended", second),
    ]
    await server.stop()


async def test_a_delivery_whose_context_is_malformed_is_delivered_untraced_and_counted():
    """What another node or an emitter wrote is trusted no further than the W3C format."""
    tracer = RecordingTracer()
    server = await traced_server(tracer)
    member = await connect_client(server, "memory")
    await member.join("lobby")
    frame = encode_frame(FrameType.JSON, "said", b'"hi"')
    server.hub.fanout.deliver(Delivery(frame, "lobby", trace="00-not-a-context"))
    assert (await member.next_event()).event == "said"
    assert tracer.sends == []
    assert server.get_stats().counters["trace_context_invalid"] == 1
    await server.stop()


async def test_a_node_without_a_recipient_records_no_delivery():
    tracer = RecordingTracer()
    server = await traced_server(tracer)
    server.to("empty", "said", "hi")
    context = f"00-{1:032x}-{1:016x}-01"
    assert tracer.sends == [("send", "(room)", "empty", "said"), ("send ended", context)]
    await server.stop()


async def test_a_send_not_recorded_carries_nothing_and_its_delivery_is_not_told():
    tracer = RecordingTracer(sampled=False)
    server = await traced_server(tracer)
    member = await connect_client(server, "memory")
    await member.join("lobby")
    server.to("lobby", "said", "hi")
    assert (await member.next_event()).event == "said"
    assert tracer.sends == [("send", "(room)", "lobby", "said"), ("send ended", None)]
    await server.stop()


def test_two_tracers_configured_is_an_error_naming_both():
    plugins = [TracingPlugin("one", RecordingTracer()), TracingPlugin("two", RecordingTracer())]
    with pytest.raises(ConfigError, match=r"two tracers are configured, .*one.* and .*two.*: configure one"):
        StelarServer(transports=["memory"], plugins=plugins)


async def _until(condition) -> None:
    await eventually(condition, what="the tracer told")
