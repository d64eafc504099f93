"""The default rate limiter: an in-memory token bucket per key (provider ``token-bucket``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from stelar_core.config import RateLimit
from stelar_core.plugins.markers import hookimpl
from stelar_core.providers import LimiterContext, RateLimiterFactory, Register

DEFAULT_MAX_ENTRIES = 100_000


class TokenBucketLimiter:
    """Each key holds up to ``max_points`` tokens, refilled continuously at
    ``max_points / window`` per second; a message takes ``cost`` tokens.

    Entries are kept least-recently-used first and bounded by ``max_entries``: past it the
    least recently used key is forgotten (it comes back with a full bucket, the lenient choice).
    ``cleanup`` drops keys whose bucket has refilled, since a full bucket is the default state.
    """

    __slots__ = ("_buckets", "_clock", "_rate", "capacity", "max_entries")

    def __init__(
        self,
        limit: RateLimit,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(limit.max_points)
        self._rate = limit.max_points / limit.window
        self.max_entries = max_entries
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str, cost: int = 1) -> bool:
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            tokens = self.capacity
            if len(self._buckets) >= self.max_entries:
                del self._buckets[next(iter(self._buckets))]
        else:
            tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self._rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        return allowed

    def available(self, key: str) -> float:
        """The tokens ``key`` has now, taking none."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.capacity
        return min(self.capacity, bucket[0] + (self._clock() - bucket[1]) * self._rate)

    def reset(self, key: str) -> None:
        self._buckets.pop(key, None)

    def cleanup(self) -> None:
        now = self._clock()
        capacity, rate = self.capacity, self._rate
        expired = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * rate >= capacity]
        for key in expired:
            del self._buckets[key]

    def size(self) -> int:
        return len(self._buckets)


def _token_bucket(context: LimiterContext) -> TokenBucketLimiter:
    return TokenBucketLimiter(context.limit)


@hookimpl(trylast=True)
def stelar_register_rate_limiters(register: Register[RateLimiterFactory]) -> None:
    register("token-bucket", _token_bucket)
