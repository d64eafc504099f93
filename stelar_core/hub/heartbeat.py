"""Heartbeat sweeps on the server's clock: every ``heartbeat_interval`` each open session is
pinged, or closed when nothing came from it within ``heartbeat_timeout``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from stelar_core.clock import Clock, Timer
from stelar_core.hub.ratelimit import RateLimitPolicy
from stelar_core.hub.session import Session
from stelar_core.protocol import DisconnectCode, ErrorCode, FrameType, encode_frame

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices

_PING = encode_frame(FrameType.PING)


class Heartbeat:
    __slots__ = (
        "_also",
        "_clock",
        "_close",
        "_config",
        "_limits",
        "_log",
        "_open",
        "_outbox",
        "_spawn",
        "_timer",
    )

    def __init__(
        self,
        services: HubServices,
        clock: Clock,
        open_sessions: Mapping[str, Session],
        limits: RateLimitPolicy,
        also: Callable[[], None],
    ) -> None:
        self._also = also  # more housekeeping on the same beat (expired resumable sessions)
        self._config = services.config
        self._clock = clock
        self._open = open_sessions
        self._outbox = services.outbox
        self._close = services.close
        self._spawn = services.spawn
        self._log = services.log
        self._limits = limits
        self._timer: Timer | None = None

    def start(self) -> None:
        """(Re)schedule the next sweep a whole interval from now."""
        self.stop()
        self._timer = self._clock.call_later(self._config().heartbeat_interval, self._sweep)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sweep(self) -> None:
        self._timer = None
        try:
            self.sweep()
        finally:
            self.start()

    def sweep(self) -> None:
        deadline = self._clock.now() - self._config().heartbeat_timeout
        for session in tuple(self._open.values()):
            if session.last_seen < deadline:
                self._outbox.send_error(
                    session, ErrorCode.HEARTBEAT_TIMEOUT, "no traffic within heartbeat_timeout"
                )
                self._close(session, DisconnectCode.SERVER_ERROR, "heartbeat timeout")
            else:
                self._outbox.send(session, _PING)
        self._also()
        # The rate limiters drop expired entries on the same beat (in a task: a shared one is async).
        self._spawn(self._clean_limiters())

    async def _clean_limiters(self) -> None:
        try:
            await self._limits.cleanup()
        except Exception:
            self._log.exception("rate limiter cleanup failed")
