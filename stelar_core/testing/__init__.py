"""Test kit for stelar and its plugins: a protocol-level client and pytest fixtures.

Enable the fixtures with ``pytest_plugins = ["stelar_core.testing.pytest_plugin"]`` in a
``conftest.py`` (or ``-p stelar_core.testing.pytest_plugin``). See ``docs/writing-plugins.md``.
"""

from stelar_core.testing.client import ReceivedEvent, TestClient, connect_client, connect_url
from stelar_core.testing.clock import FakeClock
from stelar_core.testing.recorder import HookRecorder
from stelar_core.testing.transport import StandInTransport
from stelar_core.testing.waiting import eventually

__all__ = [
    "FakeClock",
    "HookRecorder",
    "ReceivedEvent",
    "StandInTransport",
    "TestClient",
    "connect_client",
    "connect_url",
    "eventually",
]
