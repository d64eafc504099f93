"""The hub's background tasks: tracked so that a graceful stop waits for them, then cancels."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any


class Tasks:
    __slots__ = ("_log", "_running")

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``awaitable`` in a task; a failure is logged, never lost."""
        task = asyncio.ensure_future(awaitable)
        self._running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("background task failed", exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._running)

    async def finish(self, timeout: float) -> None:
        """Let the running tasks end within ``timeout`` seconds; cancel the rest and wait for them."""
        if not self._running:
            return
        _, still_running = await asyncio.wait(tuple(self._running), timeout=timeout)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
