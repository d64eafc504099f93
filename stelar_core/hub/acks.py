"""Requests waiting for their ACK response, per connection: bounded, correlated by ack id."""

from __future__ import annotations

import asyncio
from typing import Any

from stelar_core.clock import REAL_CLOCK, Clock, wait_for
from stelar_core.errors import NotConnected
from stelar_core.protocol.acks import AckIds, ack_timeout, read_answer


class PendingAcks:
    """Ack ids count up and wrap at 2**32, skipping ids still in flight. At most ``limit`` wait
    at once; each waits at most its timeout on ``clock``."""

    __slots__ = ("_clock", "_futures", "_ids")

    def __init__(self, limit: int, clock: Clock = REAL_CLOCK) -> None:
        self._ids = AckIds(limit)
        self._clock = clock
        self._futures: dict[int, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._futures)

    def open(self) -> tuple[int, asyncio.Future[Any]]:
        ack_id = self._ids.take()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[ack_id] = future
        return ack_id, future

    async def wait(self, ack_id: int, future: asyncio.Future[Any], timeout: float, event: str) -> Any:
        try:
            return await wait_for(future, timeout, self._clock, lambda: ack_timeout(event, timeout))
        finally:
            self._forget(ack_id)

    def _forget(self, ack_id: int) -> asyncio.Future[Any] | None:
        self._ids.release(ack_id)
        return self._futures.pop(ack_id, None)

    def resolve(self, ack_id: int, answer: Any) -> bool:
        """Settle a request from its response payload; False when the id is unknown."""
        future = self._forget(ack_id)
        if future is None or future.done():
            return False
        value, error = read_answer(answer)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
        return True

    def __contains__(self, ack_id: object) -> bool:
        return ack_id in self._futures

    def fail(self, ack_id: int, reason: str) -> None:
        """Fail one request (its connection is gone) with :class:`NotConnected`."""
        future = self._forget(ack_id)
        if future is not None and not future.done():
            future.set_exception(NotConnected(reason))

    def fail_all(self, reason: str) -> None:
        for ack_id in list(self._futures):
            self.fail(ack_id, reason)
