"""An IP tracker for tests of admission: its check waits until the test opens ``gate``, so an
admission stays pending as long as the test needs (the ``gated_tracker`` fixture)."""

from __future__ import annotations

import asyncio


class GatedTracker:
    """An IP tracker whose check waits until the test opens ``gate``: admission stays pending."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()

    async def check(self, ip: str, limit: int) -> bool:
        self.asked.set()
        await self.gate.wait()
        return True

    def add(self, ip: str) -> None:
        pass

    def remove(self, ip: str) -> None:
        pass

    def count(self, ip: str) -> int:
        return 0
