"""The client's rooms: joining and leaving with the server's answer awaited, and the rooms
joined again after every reconnection."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from stelar_core.client.channel import ClientServices
from stelar_core.clock import wait_for
from stelar_core.errors import AckTimeout, NotConnected, RemoteError
from stelar_core.protocol import FrameType
from stelar_core.protocol.client import RoomAnswered


class ClientRooms:
    __slots__ = ("_answers", "_channel", "_clock", "_options", "_record_error", "joined")

    def __init__(self, services: ClientServices) -> None:
        self._channel = services.channel
        self._options = services.options
        self._clock = services.clock
        self._record_error = services.record_error
        self.joined: set[str] = set()
        # Who waits for the answer to a join or leave of a room, oldest first.
        self._answers: dict[tuple[FrameType, str], deque[asyncio.Future[Any]]] = {}

    def rejoin(self) -> None:
        """On a new connection: join again every room joined or waiting to be."""
        waiting = {
            room for (kind, room), waiters in self._answers.items() if kind is FrameType.JOIN and waiters
        }
        for room in sorted(self.joined | waiting):
            self._channel.session.join(room)

    def answered(self, answer: RoomAnswered) -> None:
        key = (answer.kind, answer.room)
        if answer.kind is FrameType.JOIN:
            if answer.ok:
                self.joined.add(answer.room)
            else:
                self.joined.discard(answer.room)
        waiters = self._answers.get(key)
        if waiters:
            waiters.popleft().set_result(answer.ok)
            if not waiters:
                del self._answers[key]
        elif answer.kind is FrameType.JOIN and answer.error is not None:
            self._record_error(RemoteError(answer.error.code, f"rejoining {answer.room!r} refused"), "rejoin")

    async def join(self, room: str) -> bool:
        """Offline, the join is sent (and answered) when the connection is back."""
        return await self._ask(FrameType.JOIN, room, send=self._channel.connected)

    async def leave(self, room: str) -> bool:
        if not self._channel.connected:
            self.joined.discard(room)
            return True
        left = await self._ask(FrameType.LEAVE, room, send=True)
        if left:
            self.joined.discard(room)
        return left

    async def _ask(self, kind: FrameType, room: str, *, send: bool) -> bool:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiters = self._answers.setdefault((kind, room), deque())
        waiters.append(future)
        if send:
            if kind is FrameType.JOIN:
                self._channel.session.join(room)
            else:
                self._channel.session.leave(room)
            self._channel.transmit()
        timeout = self._options().ack_timeout
        try:
            accepted: bool = await wait_for(
                future,
                timeout,
                self._clock,
                lambda: AckTimeout(f"no answer to {kind.name.lower()} {room!r} within {timeout}s"),
            )
        except AckTimeout:
            if future in waiters:
                waiters.remove(future)
            raise
        return accepted

    def fail_waiting(self, reason: str) -> None:
        """Nobody will answer: every waiting join or leave raises ``NotConnected(reason)``."""
        for waiters in self._answers.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(NotConnected(reason))
        self._answers.clear()
