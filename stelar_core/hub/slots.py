"""A bounded number of places for work running side by side (one client's concurrent requests)."""

from __future__ import annotations

import asyncio


class Slots:
    __slots__ = ("_freed", "in_use", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._freed: asyncio.Future[None] | None = None

    def take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use -= 1
        if self._freed is not None and not self._freed.done():
            self._freed.set_result(None)

    async def wait_and_take(self) -> None:
        """Wait until a place is free and take it (one waiter at a time: the session's order)."""
        while not self.take():
            self._freed = asyncio.get_running_loop().create_future()
            try:
                await self._freed
            finally:
                self._freed = None
