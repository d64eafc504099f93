"""stelar-redis's suite: a real redis-server per test (stelar_redis.testing)."""

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
from stelar_redis.testing import connect, redis_server  # noqa: F401
