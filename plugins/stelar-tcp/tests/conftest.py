"""stelar-tcp's suite: the core's test kit (its pytest plugin: raw_tcp, gated_tracker)."""

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
