"""One trace across processes: a Python client's emit, the handler on node A, its send into a
room, and the delivery on node B to a client there, with two real stelar processes on a real
redis-server (and on a real nats-server), each keeping its spans in the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from stelar_core import StelarClient
from stelar_core.testing.processes import ServerProcess, wait_for_line
from stelar_nats.testing import nats_server  # noqa: F401
from stelar_otel.client import traceparent
from stelar_redis import Emitter
from stelar_redis.testing import RedisProcess, redis_server  # noqa: F401

pytestmark = pytest.mark.one_loop
NODE = Path(__file__).parent / "otel_node.py"


class TracedNode(ServerProcess):
    """tests/otel_node.py: a traced stelar node on Redis or NATS; ``urls`` by transport once it
    listens."""

    def __init__(self, broker: str, url: str, prefix: str) -> None:
        self.settings = {"broker": broker, "url": url, "prefix": prefix}
        self.urls: dict[str, str] = {}

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(NODE), json.dumps(self.settings)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.urls = json.loads(wait_for_line(self.process, '{"', "a traced node")[-1])


def start_nodes(broker: str, url: str) -> Iterator[tuple[TracedNode, TracedNode]]:
    prefix = f"otel-{uuid.uuid4().hex[:8]}"
    started = []
    try:
        for _ in range(2):
            node = TracedNode(broker, url, prefix)
            node.start()
            started.append(node)
        yield started[0], started[1]
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def nodes(redis_server: RedisProcess) -> Iterator[tuple[TracedNode, TracedNode]]:  # noqa: F811
    """Two traced nodes on a redis-server of the test's own."""
    yield from start_nodes("redis", redis_server.url)


@pytest.fixture(params=["redis", "nats"])
def any_nodes(request: pytest.FixtureRequest) -> Iterator[tuple[TracedNode, TracedNode]]:
    """Two traced nodes on a redis-server, then on a nats-server, of the test's own."""
    server = request.getfixturevalue(f"{request.param}_server")
    yield from start_nodes(request.param, server.url)


async def spans_of(url: str, trace_id: str) -> list[dict]:
    """The spans of trace ``trace_id`` the node at ``url`` ended (asked over a connection of its own)."""
    async with StelarClient(url, reconnection=False) as asker:
        return [span for span in await asker.request("spans") if span["trace_id"] == trace_id]


def one(spans: list[dict], name: str) -> dict:
    found = [span for span in spans if span["name"] == name]
    assert len(found) == 1, [span["name"] for span in spans]
    return found[0]


async def test_a_clients_emit_is_one_trace_through_both_nodes(any_nodes, exported):
    node_a, node_b = any_nodes
    receiver = StelarClient(node_b.urls["tcp"], reconnection=False)
    await receiver.connect()
    said: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    receiver.on("said", said.set_result)
    await receiver.join_room("chat:1")
    sender = StelarClient(node_a.urls["tcp"], reconnection=False, trace_context=traceparent)
    await sender.connect()
    with trace.get_tracer("app").start_as_current_span("send chat message", kind=SpanKind.PRODUCER) as root:
        sender.emit("say", {"room": "chat:1", "text": "hello"})
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert await asyncio.wait_for(said, 10) == "hello"

    on_a = await spans_of(node_a.urls["tcp"], trace_id)
    on_b = await spans_of(node_b.urls["tcp"], trace_id)
    process, send = one(on_a, "process say"), one(on_a, "send chat:*")
    deliver = one(on_b, "process chat:*")
    assert process["kind"] == "CONSUMER"
    assert process["parent_id"] == f"{root.get_span_context().span_id:016x}"  # the client's span
    assert send["kind"] == "PRODUCER" and send["parent_id"] == process["span_id"]
    assert send["attributes"]["messaging.destination.template"] == "chat:*"
    assert send["attributes"]["messaging.destination.name"] == "chat:1"
    assert deliver["kind"] == "CONSUMER"
    assert deliver["parent_id"] == send["span_id"] and deliver["links"] == [send["span_id"]]
    assert deliver["attributes"]["stelar.recipients"] == 1
    # Node A has no member of chat:1: it records no delivery of its own.
    assert [span["name"] for span in on_a if span["name"] == "process chat:*"] == []
    assert [span.name for span in exported()] == ["send chat message"]
    await sender.disconnect()
    await receiver.disconnect()


async def test_an_emitters_send_is_delivered_in_the_trace_of_the_backend_code_that_sent_it(
    nodes,
    redis_server,  # noqa: F811
):
    """A Celery task or a Django view sends through the emitter inside its own span: the node
    that delivers continues that trace."""
    _, node_b = nodes
    receiver = StelarClient(node_b.urls["tcp"], reconnection=False)
    said: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    receiver.on("said", said.set_result)
    await receiver.connect()
    await receiver.join_room("chat:2")
    prefix = node_b.settings["prefix"]
    async with Emitter(redis_server.url, prefix, trace_context=traceparent) as emitter:
        with trace.get_tracer("app").start_as_current_span("nightly digest") as task:
            await emitter.to("chat:2", "said", "from the backend")
    assert await asyncio.wait_for(said, 10) == "from the backend"
    trace_id = f"{task.get_span_context().trace_id:032x}"
    deliver = one(await spans_of(node_b.urls["tcp"], trace_id), "process chat:*")
    assert deliver["parent_id"] == f"{task.get_span_context().span_id:016x}"
    assert deliver["attributes"]["messaging.destination.name"] == "chat:2"
    await receiver.disconnect()
