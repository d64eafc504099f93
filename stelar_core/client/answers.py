"""Answering the server on the client side, shared by ``StelarClient`` and the test kit."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from stelar_core.protocol import ErrorCode
from stelar_core.protocol.client import ClientSession, RequestReceived, RoomAnswered

log = logging.getLogger("stelar.client")


async def answer_request(
    session: ClientSession, handlers: Mapping[str, Callable[[Any], Any]], request: RequestReceived
) -> None:
    """Answer the server's request with the handler's return value (sync or async); an error
    answer when there is no handler or it raises."""
    handler = handlers.get(request.event)
    if handler is None:
        session.answer_error(request, ErrorCode.NO_HANDLER, request.event)
        return
    try:
        value = handler(request.data)
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        log.exception("request handler %r failed", request.event)
        session.answer_error(request, ErrorCode.HANDLER_ERROR, str(exc))
        return
    session.answer(request, value)


def room_answer(event: RoomAnswered) -> dict[str, Any]:
    """A join or leave answer as it travelled: ``{"ok": true}`` (with the room's position and
    the recovery's outcome where there are some) or ``{"error": {...}}``."""
    if event.error is None:
        answer: dict[str, Any] = {"ok": True}
        if event.position is not None:
            answer["position"] = event.position.to_json()
        if event.recovered is not None:
            answer["recovered"] = event.recovered
            if event.recovered:
                answer["replayed"] = event.replayed
            else:
                answer["reason"] = event.reason
        return answer
    return {"error": {"code": event.error.code, "message": event.error.message}}
