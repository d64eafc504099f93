"""Requests waiting for their ACK response, per connection: bounded, correlated by ack id."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from stelar_core.clock import REAL_CLOCK, Clock
from stelar_core.errors import AckError, AckTimeout, NotConnected
from stelar_core.protocol import MAX_ACK_ID, ErrorCode, Frame, dump_json

log = logging.getLogger("stelar.client")


async def client_answer(handlers: Mapping[str, Callable[[Any], Any]], request: Frame) -> bytes:
    """The ACK response payload a client sends to a server's request: the handler's return
    value as ``{"ok": ...}``, or ``{"error": ...}`` (no handler, or the handler raised)."""
    handler = handlers.get(request.event)
    if handler is None:
        return dump_json({"error": {"code": ErrorCode.NO_HANDLER, "message": request.event}})
    try:
        value = handler(request.json())
        if inspect.isawaitable(value):
            value = await value
        return dump_json({"ok": value})
    except Exception as exc:
        log.exception("request handler %r failed", request.event)
        return dump_json({"error": {"code": ErrorCode.HANDLER_ERROR, "message": str(exc)}})


def _time_out(future: asyncio.Future[Any], event: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(AckTimeout(f"no answer to request {event!r} within {timeout}s"))


class PendingAcks:
    """Ack ids count up and wrap at 2**32, skipping ids still in flight. At most ``limit`` wait
    at once; each waits at most its timeout on ``clock``."""

    __slots__ = ("_clock", "_futures", "_next_id", "limit")

    def __init__(self, limit: int, clock: Clock = REAL_CLOCK) -> None:
        self.limit = limit
        self._clock = clock
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._futures)

    def open(self) -> tuple[int, asyncio.Future[Any]]:
        if len(self._futures) >= self.limit:
            raise AckError(
                ErrorCode.TOO_MANY_PENDING_ACKS, f"{self.limit} requests already wait for an answer"
            )
        ack_id = self._next_id
        while ack_id in self._futures:
            ack_id = (ack_id + 1) & MAX_ACK_ID
        self._next_id = (ack_id + 1) & MAX_ACK_ID
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[ack_id] = future
        return ack_id, future

    async def wait(self, ack_id: int, future: asyncio.Future[Any], timeout: float, event: str) -> Any:
        timer = self._clock.call_later(timeout, _time_out, future, event, timeout)
        try:
            return await future
        finally:
            timer.cancel()
            self._futures.pop(ack_id, None)

    def resolve(self, ack_id: int, answer: Any) -> bool:
        """Settle a request from its response payload; False when the id is unknown."""
        future = self._futures.pop(ack_id, None)
        if future is None or future.done():
            return False
        if isinstance(answer, dict) and "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            future.set_exception(
                AckError(str(error.get("code", ErrorCode.HANDLER_ERROR)), str(error.get("message", "")))
            )
        elif isinstance(answer, dict) and "ok" in answer:
            future.set_result(answer["ok"])
        else:
            future.set_exception(AckError(ErrorCode.INVALID_FRAME, "ACK response is not {ok} or {error}"))
        return True

    def __contains__(self, ack_id: object) -> bool:
        return ack_id in self._futures

    def fail(self, ack_id: int, reason: str) -> None:
        """Fail one request (its connection is gone) with :class:`NotConnected`."""
        future = self._futures.pop(ack_id, None)
        if future is not None and not future.done():
            future.set_exception(NotConnected(reason))

    def fail_all(self, reason: str) -> None:
        for future in self._futures.values():
            if not future.done():
                future.set_exception(NotConnected(reason))
        self._futures.clear()
