"""stelar-api's suite: the core's test kit, a real redis-server for the two-node tests, and
Chromium for the admin page."""

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
from stelar_redis.testing import redis_server  # noqa: F401
from stelar_ws.testing import browser  # noqa: F401
