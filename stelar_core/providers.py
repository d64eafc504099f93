"""The interfaces of providers a plugin can supply (besides transports): typed, documented seams.

Methods may be plain or ``async``: the hub awaits a returned awaitable and takes the fast path
when the result is plain, so an in-process provider costs no ``await`` per message.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import attrs

T = TypeVar("T")
MaybeAwaitable: TypeAlias = "T | Awaitable[T]"


async def resolve(value: MaybeAwaitable[T]) -> T:
    """Await ``value`` if it is awaitable (for the slow path of a maybe-async provider)."""
    if inspect.isawaitable(value):
        return await value
    return value


@runtime_checkable
class RateLimiter(Protocol):
    """The seed's ``IRateLimiter``. ``key`` is a client ID."""

    def check(self, key: str, cost: int = 1) -> MaybeAwaitable[bool]:
        """Take ``cost`` points for ``key``; ``False`` when it has too few left."""

    def reset(self, key: str) -> MaybeAwaitable[None]:
        """Forget ``key`` (called when a client disconnects)."""

    def cleanup(self) -> MaybeAwaitable[None]:
        """Drop expired entries (called on every heartbeat sweep)."""

    def size(self) -> MaybeAwaitable[int]:
        """Entries held (``rate_limiter_entries`` in the stats)."""


@runtime_checkable
class IPTracker(Protocol):
    """The seed's ``IIPTracker``: open connections per IP address."""

    def check(self, ip: str, limit: int) -> MaybeAwaitable[bool]:
        """Whether ``ip`` may open one more connection (``limit`` is ``max_connections_per_ip``)."""

    def add(self, ip: str) -> MaybeAwaitable[None]: ...

    def remove(self, ip: str) -> MaybeAwaitable[None]: ...

    def count(self, ip: str) -> MaybeAwaitable[int]: ...


@attrs.frozen(slots=True)
class Delivery:
    """One emit on its way to recipients: an encoded frame and who gets it.

    ``client_id`` set: that client. Else ``room`` set: the room's members. Else: everyone.
    ``exclude`` names clients that must not receive it.
    """

    frame: bytes
    room: str | None = None
    client_id: str | None = None
    exclude: frozenset[str] = frozenset()


@runtime_checkable
class Broker(Protocol):
    """The delivery seam. Every ``broadcast``, ``to(room)`` and ``to_id`` is published here; the
    broker hands it to ``deliver`` on every node that should see it (the local one included).
    A broker shared by several processes (e.g. over Redis) makes them act as one server."""

    async def start(self, deliver: Callable[[Delivery], Any]) -> None: ...

    def publish(self, delivery: Delivery) -> None: ...

    async def stop(self) -> None: ...
