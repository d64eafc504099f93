"""Deprecated: the worker supervisor of ``stelar serve --workers`` is
``stelar_core.commands.workers`` (it lives with the other commands, so the server never imports
the command line). ``run_workers`` here still works, with a ``DeprecationWarning``."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    if name != "run_workers":
        raise AttributeError(name)
    warnings.warn(
        "stelar_core.server.workers.run_workers moved to stelar_core.commands.workers.run_workers",
        DeprecationWarning,
        stacklevel=2,
    )
    # Imported by name when asked for: a static import would make the server layer import the
    # command line, the dependency this move removed.
    return importlib.import_module("stelar_core.commands.workers").run_workers
