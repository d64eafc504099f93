"""Which limiter judges a message: per-client override > per-event limit > global limiter."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping

from stelar_core.config import RateLimit
from stelar_core.providers import MaybeAwaitable, RateLimiter, resolve

# Builds the limiter of one policy: ``factory(limit, scope)``, scope "event:<name>" or "client:<id>".
LimiterFactory = Callable[[RateLimit, str], RateLimiter]


class RateLimitPolicy:
    """Holds one limiter per policy, all keyed by client ID.

    ``global_limiter`` is the configured backend (built from ``rate_limit`` by the selected
    provider, or a custom object passed as ``rate_limiter``); per-event limits and per-client
    overrides get limiters from ``factory``, the selected provider (token bucket by default).
    """

    def __init__(
        self,
        factory: LimiterFactory,
        global_limiter: RateLimiter | None,
        event_limits: Mapping[str, RateLimit],
    ) -> None:
        self._factory = factory
        self.global_limiter = global_limiter
        self._event_limiters: dict[str, RateLimiter] = {}
        self._client_limiters: dict[str, RateLimiter] = {}
        self.event_limits: dict[str, RateLimit] = {}
        self.client_limits: dict[str, RateLimit] = {}
        self._awaited_sizes: dict[int, int] = {}
        for event, limit in event_limits.items():
            self.set_event_limit(event, limit)

    def check(self, client_id: str, event: str, key: str) -> MaybeAwaitable[bool]:
        """Judge one message of ``client_id``, counted for ``key`` (the client ID, or the value
        of ``rate_limit_key``)."""
        limiter = (
            self._client_limiters.get(client_id) or self._event_limiters.get(event) or self.global_limiter
        )
        return True if limiter is None else limiter.check(key)

    def set_event_limit(self, event: str, limit: RateLimit) -> None:
        self.event_limits[event] = limit
        self._event_limiters[event] = self._factory(limit, f"event:{event}")

    def remove_event_limit(self, event: str) -> bool:
        self.event_limits.pop(event, None)
        return self._event_limiters.pop(event, None) is not None

    def set_client_limit(self, client_id: str, limit: RateLimit) -> None:
        self.client_limits[client_id] = limit
        self._client_limiters[client_id] = self._factory(limit, f"client:{client_id}")

    def remove_client_limit(self, client_id: str) -> bool:
        self.client_limits.pop(client_id, None)
        return self._client_limiters.pop(client_id, None) is not None

    def forget(self, client_id: str, *, keep_buckets: bool = False) -> list[Awaitable[None]]:
        """A client left: drop its override and its entries in every shared limiter (unless
        ``keep_buckets``: they count for a key other connections share).

        Returns the awaitables of async backends, for the caller to run in the background."""
        self.remove_client_limit(client_id)
        if keep_buckets:
            return []
        pending = []
        for limiter in self._all():
            result = limiter.reset(client_id)
            if inspect.isawaitable(result):
                pending.append(result)
        return pending

    def _all(self) -> list[RateLimiter]:
        limiters = [*self._event_limiters.values(), *self._client_limiters.values()]
        if self.global_limiter is not None:
            limiters.append(self.global_limiter)
        return limiters

    async def cleanup(self) -> None:
        """Expire entries everywhere, and note the sizes that only an ``await`` can read."""
        for limiter in self._all():
            await resolve(limiter.cleanup())
            size = limiter.size()
            if inspect.isawaitable(size):
                self._awaited_sizes[id(limiter)] = await size

    def size(self) -> int:
        """Entries in all limiters; an async backend counts as of the last cleanup."""
        total = 0
        for limiter in self._all():
            size = limiter.size()
            if inspect.isawaitable(size):
                if inspect.iscoroutine(size):
                    size.close()
                size = self._awaited_sizes.get(id(limiter), 0)
            total += size
        return total
