"""What the client sends: straight out while connected, into the bounded offline queue while
not, and the requests waiting for their answers."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import attrs

from stelar_core.client.channel import ClientServices
from stelar_core.clock import wait_for
from stelar_core.errors import NotConnected
from stelar_core.protocol import FrameType
from stelar_core.protocol.acks import ack_timeout
from stelar_core.protocol.client import ResponseReceived


@attrs.define(slots=True)
class Queued:
    kind: FrameType
    event: str
    payload: bytes
    ack_id: int | None = None
    # The trace context when it was sent (the ``trace_context`` option's answer), kept while queued.
    trace: str | None = None


class Outbound:
    __slots__ = ("_channel", "_clock", "_hook", "_options", "_queue", "_requests", "dropped")

    def __init__(self, services: ClientServices) -> None:
        self._channel = services.channel
        self._options = services.options
        self._clock = services.clock
        self._hook = services.hook
        self._queue: deque[Queued] = deque()
        self._requests: dict[int, asyncio.Future[Any]] = {}
        self.dropped = 0

    def __len__(self) -> int:
        """Messages waiting in the offline queue."""
        return len(self._queue)

    def check_payload(self, payload: bytes) -> None:
        limit = self._options().max_payload_size
        if len(payload) > limit:
            raise ValueError(f"payload is {len(payload)} bytes, max_payload_size is {limit}")

    def trace_context(self) -> str | None:
        """The trace context to attach to a message sent now, when the client has a way to ask."""
        current = self._options().trace_context
        return None if current is None else current()

    def send(self, entry: Queued) -> None:
        """Out now while connected; else into the offline queue (the oldest dropped when full)."""
        channel = self._channel
        if channel.link is not None and channel.connected:
            if entry.ack_id is not None:
                channel.session.send_request(entry.ack_id, entry.event, entry.payload, trace=entry.trace)
            else:
                channel.session.emit_payload(entry.kind, entry.event, entry.payload, trace=entry.trace)
            channel.transmit()
            return
        size = self._options().message_queue_size
        if size == 0:
            self._drop(entry)
            return
        if len(self._queue) >= size:
            self._drop(self._queue.popleft())
        self._queue.append(entry)
        self._hook("on_message_queued", event=entry.event, queue_size=len(self._queue))

    def _drop(self, entry: Queued) -> None:
        self.dropped += 1
        if entry.ack_id is not None:
            self.fail([entry.ack_id], "dropped from the full offline queue")

    def drain(self) -> None:
        """Send what queued while offline, in order (requests that timed out meanwhile are gone)."""
        sent = 0
        while self._queue and self._channel.connected:
            entry = self._queue.popleft()
            if entry.ack_id is not None and entry.ack_id not in self._requests:
                continue
            self.send(entry)
            sent += 1
        if sent:
            self._hook("on_queue_drained", count=sent)

    async def request(self, event: str, payload: bytes, timeout: float | None) -> Any:
        """Send a request (or queue it) and wait for its answer within ``timeout``."""
        session = self._channel.session
        ack_id = session.open_request()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[ack_id] = future
        self.send(Queued(FrameType.ACK_REQUEST, event, payload, ack_id, self.trace_context()))
        timeout = timeout or self._options().ack_timeout
        try:
            return await wait_for(future, timeout, self._clock, lambda: ack_timeout(event, timeout))
        finally:
            self._requests.pop(ack_id, None)
            session.forget_request(ack_id)

    def answered(self, response: ResponseReceived) -> None:
        future = self._requests.pop(response.ack_id, None)
        if future is not None and not future.done():
            if response.error is not None:
                future.set_exception(response.error)
            else:
                future.set_result(response.value)

    def fail(self, ack_ids: list[int], reason: str) -> None:
        """The requests ``ack_ids`` will get no answer: ``NotConnected(reason)``."""
        for ack_id in ack_ids:
            future = self._requests.pop(ack_id, None)
            self._channel.session.forget_request(ack_id)
            if future is not None and not future.done():
                future.set_exception(NotConnected(reason))

    def clear(self, reason: str) -> None:
        """Fail every waiting request and drop the offline queue (``disconnect()``)."""
        self.fail(list(self._requests), reason)
        self._queue.clear()
