"""Ack ids and ACK answers, as both sides of the protocol use them (sans-I/O)."""

from __future__ import annotations

from typing import Any

from stelar_core.errors import AckError, AckTimeout, NotConnected
from stelar_core.protocol.codes import ErrorCode
from stelar_core.protocol.frames import MAX_ACK_ID, dump_json


class AckIds:
    """The ids of one side's requests awaiting an answer: at most ``limit``; ids count up and
    wrap at 2**32, skipping those still in use."""

    __slots__ = ("_in_use", "_next", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use: set[int] = set()
        self._next = 0

    def take(self) -> int:
        if len(self._in_use) >= self.limit:
            raise AckError(
                ErrorCode.TOO_MANY_PENDING_ACKS, f"{self.limit} requests already wait for an answer"
            )
        ack_id = self._next
        while ack_id in self._in_use:
            ack_id = (ack_id + 1) & MAX_ACK_ID
        self._next = (ack_id + 1) & MAX_ACK_ID
        self._in_use.add(ack_id)
        return ack_id

    def release(self, ack_id: int) -> bool:
        """Give an id back; False when it was not in use."""
        if ack_id in self._in_use:
            self._in_use.remove(ack_id)
            return True
        return False

    def release_all(self, ack_ids: set[int] | list[int]) -> None:
        self._in_use.difference_update(ack_ids)

    def __contains__(self, ack_id: object) -> bool:
        return ack_id in self._in_use

    def __len__(self) -> int:
        return len(self._in_use)


def ok_answer(value: Any) -> bytes:
    """The payload of an accepted answer, ``{"ok": value}``; ``TypeError`` when JSON cannot
    carry ``value``."""
    return dump_json({"ok": value})


def error_answer(code: str, message: str) -> bytes:
    """The payload of a refused answer, ``{"error": {"code": ..., "message": ...}}``."""
    return dump_json({"error": {"code": code, "message": message}})


def ack_timeout(event: str, timeout: float) -> AckTimeout:
    """The error of a request that got no answer in time (either side)."""
    return AckTimeout(f"no answer to request {event!r} within {timeout}s")


def read_answer(answer: Any) -> tuple[Any, AckError | None]:
    """``(value, None)`` for ``{"ok": value}``, ``(None, error)`` for ``{"error": {...}}`` or for
    an answer that is neither."""
    if isinstance(answer, dict) and "ok" in answer and "error" not in answer:
        return answer["ok"], None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        code = str(error.get("code", ErrorCode.HANDLER_ERROR))
        return None, AckError(code, str(error.get("message", "")))
    return None, AckError(ErrorCode.INVALID_FRAME, "ACK answer is neither {ok} nor {error}")


def request_failure(exc: AckError | AckTimeout | NotConnected) -> tuple[str, str]:
    """A failed request to a client as ``(code, message)``, for a broker to send to the node
    that asked; :func:`request_error` turns it back into the same exception there."""
    if isinstance(exc, AckError):
        return exc.code, exc.message
    code = ErrorCode.ACK_TIMEOUT if isinstance(exc, AckTimeout) else ErrorCode.NOT_CONNECTED
    return code, str(exc)


def request_error(code: str, message: str) -> AckError | AckTimeout | NotConnected:
    """The exception a request failed with on another node, from :func:`request_failure`."""
    if code == ErrorCode.NOT_CONNECTED:
        return NotConnected(message)
    if code == ErrorCode.ACK_TIMEOUT:
        return AckTimeout(message)
    return AckError(code, message)
