"""Run every async test on asyncio's loop and on uvloop. Opt in from a ``conftest.py``::

    from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401

(uvloop's transports differ from asyncio's in ways a transport notices). Without uvloop
installed, tests run on asyncio's loop only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Every async test runs on asyncio's loop and on uvloop (stelar-core's ``uvloop`` extra):
    uvloop's transports differ in ways that matter (not ``asyncio.Transport`` subclasses; reading
    starts after ``connection_made`` even when it paused). Tests marked ``one_loop`` drive other
    processes (whose own loop is what matters) and run once, on asyncio's loop."""
    if item.get_closest_marker("one_loop") is not None:
        return {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
