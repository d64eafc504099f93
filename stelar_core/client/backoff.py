"""Reconnection delays: exponential backoff with full jitter (pure, so tests need no clock)."""

from __future__ import annotations

from collections.abc import Callable


def full_jitter_delay(attempt: int, base: float, maximum: float, random: Callable[[], float]) -> float:
    """A delay drawn uniformly from ``[0, min(maximum, base * 2 ** (attempt - 1))]``.

    Full jitter spreads a crowd of clients reconnecting to a restarted server over the whole
    window instead of bunching them at the same instants.
    """
    ceiling: float = min(maximum, base * 2.0 ** (attempt - 1))
    return random() * ceiling
