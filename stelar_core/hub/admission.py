"""Who may connect: the server-wide and per-IP connection limits, and whether it accepts at all."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from stelar_core.errors import ConnectionRefused, LimitReached
from stelar_core.hub.hooks import Hook
from stelar_core.protocol import DisconnectCode, ErrorCode
from stelar_core.providers import IPTracker, MaybeAwaitable, resolve

if TYPE_CHECKING:
    from stelar_core.hub.services import HubServices


class AdmissionTicket:
    """A place reserved by :meth:`Admissions.admit`; ``release`` is idempotent."""

    __slots__ = ("_admissions", "_released", "ip")

    def __init__(self, admissions: Admissions, ip: str) -> None:
        self._admissions = admissions
        self.ip = ip
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admissions.release(self.ip)


class Admissions:
    """Counts reserved places (connections admitted, handshake or open) against the limits."""

    def __init__(self, services: HubServices, ip_tracker: IPTracker) -> None:
        self._config = services.config
        self.ip_tracker = ip_tracker
        self._counters = services.counters
        self._hooks = services.hooks
        self._spawn = services.spawn
        self._log = services.log
        self._tracer = services.tracer
        self.admitted = 0
        self.accepting = False

    def admit(self, remote_address: str) -> AdmissionTicket | Awaitable[AdmissionTicket]:
        """A place for a connection from ``remote_address``, or ``ConnectionRefused``. The ticket
        comes at once when the IP tracker answers at once (the one kept in this process): no
        coroutine, no task, no pause in reading; a tracker that must be awaited (a shared one)
        makes it an awaitable of the ticket."""
        config = self._config()
        if not self.accepting:
            self._refused(ErrorCode.SERVER_SHUTDOWN)
            raise ConnectionRefused(
                ErrorCode.SERVER_SHUTDOWN, "server is not accepting connections", DisconnectCode.GOING_AWAY
            )
        if self.admitted >= config.max_connections:
            raise self._limit_reached(
                ErrorCode.SERVER_FULL,
                f"server is full ({config.max_connections} connections)",
                self.admitted,
                config.max_connections,
                remote_address,
                "global",
            )
        # Reserve before any await so concurrent admissions cannot overshoot the limit.
        self.admitted += 1
        tracker, limit = self.ip_tracker, config.max_connections_per_ip
        try:
            try:
                allowed = tracker.check(remote_address, limit)
            except LimitReached as refusal:
                raise self._shared_limit_reached(refusal, remote_address) from None
            if allowed is False:
                count = tracker.count(remote_address)
                if not inspect.isawaitable(count):
                    raise self._ip_limit_reached(remote_address, limit, count)
                return self._admit_slowly(remote_address, limit, allowed, count=count)
            if allowed is not True:
                return self._admit_slowly(remote_address, limit, allowed)
            added = tracker.add(remote_address)
        except BaseException:
            self.admitted -= 1
            raise
        if added is not None:
            return self._admit_slowly(remote_address, limit, True, added=added)
        return AdmissionTicket(self, remote_address)

    async def _admit_slowly(
        self,
        remote_address: str,
        limit: int,
        allowed: MaybeAwaitable[bool],
        *,
        added: Awaitable[None] | None = None,
        count: Awaitable[int] | None = None,
    ) -> AdmissionTicket:
        """The rest of ``admit`` when one of the tracker's answers must be awaited."""
        try:
            if added is None:
                try:
                    passed = await resolve(allowed)
                except LimitReached as refusal:
                    raise self._shared_limit_reached(refusal, remote_address) from None
                if not passed:
                    active = await (count or resolve(self.ip_tracker.count(remote_address)))
                    raise self._ip_limit_reached(remote_address, limit, active)
                added = resolve(self.ip_tracker.add(remote_address))
            await added
        except BaseException:
            self.admitted -= 1
            raise
        return AdmissionTicket(self, remote_address)

    def _ip_limit_reached(self, ip: str, limit: int, count: int) -> ConnectionRefused:
        return self._limit_reached(
            ErrorCode.TOO_MANY_CONNECTIONS_FROM_IP,
            f"too many connections from {ip} (at most {limit})",
            count,
            limit,
            ip,
            "ip",
        )

    def _shared_limit_reached(self, refusal: LimitReached, ip: str) -> ConnectionRefused:
        """A limit the IP tracker keeps for several nodes (a cluster-wide ``max_connections``)."""
        return self._limit_reached(
            refusal.code, refusal.reason, refusal.active, refusal.limit, ip, refusal.scope
        )

    def _limit_reached(
        self, code: str, reason: str, active: int, limit: int, ip: str, scope: str
    ) -> ConnectionRefused:
        self._refused(code)
        self._log.warning("refused connection from %s: %s", ip, reason)
        self._hooks.notify(
            Hook.MAX_CONNECTIONS_REACHED, active_connections=active, max_connections=limit, ip=ip, scope=scope
        )
        return ConnectionRefused(code, reason, DisconnectCode.TRY_AGAIN_LATER)

    def _refused(self, code: str) -> None:
        self._counters.refused[code] += 1
        if self._tracer is not None:
            # A short span of its own: the connection ends here, before any frame.
            scope = self._tracer.connect(None)
            scope.refused(code)
            scope.end()

    def release(self, ip: str) -> None:
        self.admitted -= 1
        removed = self.ip_tracker.remove(ip)
        if inspect.isawaitable(removed):
            self._spawn(removed)

    def tls_handshake_failed(self, remote_address: str, protocol: str, category: str, reason: str) -> None:
        """A connection that never got as far as admission: counted, logged, told to the hooks."""
        self._counters.tls_handshake_failures[category] += 1
        self._log.info("TLS handshake from %s (%s) failed: %s", remote_address, protocol, reason)
        self._hooks.notify(
            Hook.TLS_HANDSHAKE_FAILED, ip=remote_address, protocol=protocol, category=category, reason=reason
        )
