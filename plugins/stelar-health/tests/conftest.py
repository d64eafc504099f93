"""stelar-health's suite: the core's test kit."""

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
