"""stelar.js in Chromium attaches the trace context its ``traceContext`` option gives to emits
and requests, and the server's spans continue that trace (the page plays the part of
OpenTelemetry JS, which is not installed here: it makes a traceparent of its own)."""

from __future__ import annotations

import asyncio

import pytest

from stelar_core import StelarServer
from stelar_ws.testing import browser  # noqa: F401

pytestmark = pytest.mark.one_loop


async def test_a_browsers_emit_and_request_continue_its_trace(browser, exported):  # noqa: F811
    server = StelarServer(transports=["ws"], host="127.0.0.1", port=0, otel={"enabled": True})
    handled = asyncio.Event()
    server.on("chat", lambda ctx: handled.set())
    server.on_ack("ask", lambda ctx: "yes")
    await server.start()
    page = await browser.new_page()
    port = server.get_port("ws")
    try:
        await page.goto(f"http://127.0.0.1:{port}/stelar.js")
        sent = await page.evaluate(
            """async (port) => {
                const stelar = await import('/stelar.js');
                const hex = (bytes) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)),
                    (b) => b.toString(16).padStart(2, "0")).join("");
                const traceId = hex(16), spanId = hex(8);
                const client = new stelar.StelarClient(`ws://127.0.0.1:${port}/`, {
                    traceContext: () => `00-${traceId}-${spanId}-01`,
                });
                await client.connect();
                client.emit("chat", "hi");
                const answer = await client.request("ask");
                client.disconnect();
                return { traceId, spanId, answer, serverTraces: client._session.serverTraces };
            }""",
            port,
        )
        await asyncio.wait_for(handled.wait(), 5)
    finally:
        await page.close()
        await server.stop()
    assert sent["answer"] == "yes" and sent["serverTraces"] is True
    processed = {span.name: span for span in exported() if span.name.startswith("process ")}
    assert set(processed) == {"process chat", "process ask"}
    for span in processed.values():
        assert f"{span.context.trace_id:032x}" == sent["traceId"]
        assert span.parent is not None and span.parent.is_remote
        assert f"{span.parent.span_id:016x}" == sent["spanId"]
    assert [event.name for event in processed["process ask"].events] == ["settle"]
