"""stelar-asgi's suite: the core's test kit, and stelar-ws's browser (asgi serves stelar.js)."""

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
from stelar_ws.testing import browser  # noqa: F401
