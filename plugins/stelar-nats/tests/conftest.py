"""stelar-nats's suite: a real nats-server per test (stelar_nats.testing)."""

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
from stelar_nats.testing import nats_server  # noqa: F401
