"""The tracing seam (stelar_core.tracing) with a tracer that records what the hub tells it: one
scope per event or request, current while the gate and the handler run (across an async
handler's awaits too), ended once; refusals and handler errors told to it; at most one tracer."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from stelar_core import AckError, ConfigError, StelarServer
from stelar_core.plugin_api import hookimpl
from stelar_core.testing import connect_client, eventually
from stelar_core.tracing import UNDECLARED

CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("current", default=None)


class RecordingScope:
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

    def end(self):
        self.log.append(("end", self.name))


class RecordingTracer:
    def __init__(self) -> None:
        self.log: list = []

    def process(self, event, request, client_id, protocol, size):
        self.log.append(("process", event, request, protocol, size))
        return RecordingScope(self.log, event)


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


def test_two_tracers_configured_is_an_error_naming_both():
    plugins = [TracingPlugin("one", RecordingTracer()), TracingPlugin("two", RecordingTracer())]
    with pytest.raises(ConfigError, match=r"two tracers are configured, .*one.* and .*two.*: configure one"):
        StelarServer(transports=["memory"], plugins=plugins)


async def _until(condition) -> None:
    await eventually(condition, what="the tracer told")
