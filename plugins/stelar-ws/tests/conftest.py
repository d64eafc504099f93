"""stelar-ws's suite: the core's test kit (its pytest plugin is enabled on the command line) and
this distribution's own (a raw WebSocket peer, a real browser)."""

from hypothesis import settings

from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
from stelar_ws.testing import browser, raw_ws  # noqa: F401

# Examples are cheap; a loaded 2-core machine is not a reason to fail one.
settings.register_profile("stelar", deadline=None)
settings.load_profile("stelar")
