"""What talking to NATS can raise, for the places that carry on after it (sans-I/O)."""

from __future__ import annotations

import asyncio

import nats.errors

NATS_FAILURES = (nats.errors.Error, ConnectionError)
# The same, or no answer in time (a probe, a heartbeat that does not come back, a close).
NATS_FAILURES_OR_TIMEOUT = (nats.errors.Error, ConnectionError, asyncio.TimeoutError)
