"""Frames from the hub to one session: counted, and refusals answered the way the sender waits
for them (an ACK error for a request, a room answer for a join or leave, else an error frame)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stelar_core import tracing
from stelar_core.config import ServerConfig
from stelar_core.hub.hooks import Hook, HookRunner
from stelar_core.hub.session import Session, SessionState
from stelar_core.hub.stats import Counters
from stelar_core.protocol import Frame, FrameType, dump_json, encode_frame
from stelar_core.protocol.acks import error_answer, ok_answer


def answer_payload(refusal: tuple[str, str] | None) -> bytes:
    """The payload answering a join, leave or request: ``{"ok": true}`` or ``{"error": ...}``."""
    return ok_answer(True) if refusal is None else error_answer(*refusal)


class Outbox:
    __slots__ = ("_config", "_counters", "_hooks", "_traced")

    def __init__(
        self, counters: Counters, hooks: HookRunner, config: Callable[[], ServerConfig], traced: bool = False
    ) -> None:
        self._counters = counters
        self._hooks = hooks
        self._config = config
        # A tracer is told when a request is answered (tracing.settled); without one, not asked.
        self._traced = traced

    def send(self, session: Session, frame: bytes) -> None:
        if session.state is not SessionState.CLOSED:
            self._counters.messages_sent += 1
            self._counters.bytes_sent += len(frame)
            session.connection.send(frame)

    def send_error(
        self, session: Session, code: str, message: str, event: str = "", errors: list[str] | None = None
    ) -> None:
        body: dict[str, Any] = {"message": message}
        if event:
            body["event"] = event
        if errors:
            body["errors"] = errors
        self.send(session, encode_frame(FrameType.ERROR, code, dump_json(body)))

    def answer_room(self, session: Session, frame: Frame, refusal: tuple[str, str] | None) -> None:
        self.send(session, encode_frame(frame.type, frame.event, answer_payload(refusal)))

    def reply_error(self, session: Session, request: Frame, code: str, message: str) -> None:
        payload = answer_payload((code, message))
        self.answer(session, request, payload)

    def answer(self, session: Session, request: Frame, payload: bytes) -> None:
        """Answer a client's request; the answer is kept (a resumed client that did not get it
        asks again), and one made after the connection closed goes to the session that resumed
        it, if any."""
        assert request.ack_id is not None
        if self._traced:
            tracing.settled()
        frame = encode_frame(FrameType.ACK_RESPONSE, request.event, payload, request.ack_id)
        answers = session.answers
        if answers is not None:
            answers[request.ack_id] = frame
            if len(answers) > self._config().max_cached_answers:
                del answers[next(iter(answers))]
        while session.state is SessionState.CLOSED and session.successor is not None:
            session = session.successor
        self.send(session, frame)

    def refuse(self, session: Session, frame: Frame, code: str, message: str) -> None:
        """Tell the sender its message was refused, in the answer it waits for."""
        tracing.refused(code)
        if frame.type is FrameType.ACK_REQUEST:
            self.reply_error(session, frame, code, message)
        elif frame.type is FrameType.JOIN or frame.type is FrameType.LEAVE:
            self.answer_room(session, frame, (code, message))
        else:
            self.send_error(session, code, message, frame.event)

    def invalid(self, session: Session, code: str, reason: str, frame: Frame | None = None) -> None:
        """A frame broke the protocol: counted, the hooks told, the sender answered."""
        self._counters.invalid_messages += 1
        self._hooks.notify(
            Hook.INVALID_MESSAGE, client_id=session.id, code=code, reason=reason, protocol=session.protocol
        )
        if frame is not None:
            self.refuse(session, frame, code, reason)
        else:
            self.send_error(session, code, reason)
