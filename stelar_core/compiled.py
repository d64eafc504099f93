"""Which implementation of the hot path runs: compiled by mypyc, or the pure Python source.

The modules of :data:`ACCELERATED` are plain, typed Python. When a C compiler is there, the
install (or ``scripts/build_accelerator.py``) compiles them with mypyc into extension modules
that sit beside their source, and Python imports an extension before a ``.py`` of the same
name. Where none was built, the source runs: the same behaviour, slower.

``STELAR_NO_EXTENSIONS=1`` (any value but empty or ``0``), set before ``stelar_core`` is
imported, makes the source load even where the extensions are built: for the test suite's pure
run, and to rule the accelerator out when something looks wrong. ``stelar_core.COMPILED`` says
which one runs; the startup lines, ``stelar plugins`` and ``/health`` say it too.

This module itself is never compiled: it decides.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

# What mypyc compiles (scripts/build_accelerator.py and the build hook read this list).
ACCELERATED = (
    "stelar_core.protocol.frames",
    "stelar_core.protocol.stream",
    "stelar_core.protocol.acks",
    "stelar_core.hub.gate",
    "stelar_core.hub.outbox",
    "stelar_core.hub.requests",
    "stelar_core.hub.fanout",
    "stelar_core.hub.handlers",
    "stelar_core.hub.session",
    "stelar_core.hub.context",
    "stelar_core.hub.handshake",
    "stelar_core.hub.admission",
    "stelar_core.hub.rooms",
    "stelar_core.hub.acks",
    "stelar_core.hub.ratelimit",
    "stelar_core.hub.directory",
    "stelar_core.hub.hub",
    "stelar_core.hub.stats",
)
NO_EXTENSIONS_ENV = "STELAR_NO_EXTENSIONS"
EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def extensions_refused() -> bool:
    """Whether ``STELAR_NO_EXTENSIONS`` asks for the pure Python source."""
    return os.environ.get(NO_EXTENSIONS_ENV, "") not in ("", "0")


class PureSource(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` source of a compiled module of any stelar package (stelar-core's, and
    those a distribution names in its own ``compiled.py``, such as stelar-ws's), ahead of
    Python's own finders, which would take the extension beside it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is None or not fullname.startswith("stelar_"):
            return None
        leaf = fullname.rpartition(".")[2]
        for directory in path:
            source = os.path.join(directory, f"{leaf}.py")
            compiled = (os.path.join(directory, leaf + suffix) for suffix in EXTENSION_SUFFIXES)
            if os.path.isfile(source) and any(os.path.isfile(extension) for extension in compiled):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def prefer_source() -> None:
    """When ``STELAR_NO_EXTENSIONS`` asks for it, make the accelerated modules load from their
    source (once; before any of them is imported)."""
    if extensions_refused() and not any(isinstance(finder, PureSource) for finder in sys.meta_path):
        sys.meta_path.insert(0, PureSource())


prefer_source()  # (stelar_core imports this module first of all)


def is_extension(module: ModuleType) -> bool:
    return (getattr(module, "__file__", None) or "").endswith(EXTENSION_SUFFIXES)


def compiled_modules() -> tuple[str, ...]:
    """The accelerated modules that run compiled in this process."""
    return tuple(name for name in ACCELERATED if is_extension(importlib.import_module(name)))


def describe() -> str:
    """One line for people: which implementation runs, and why the pure one if it does."""
    compiled = compiled_modules()
    if len(compiled) == len(ACCELERATED):
        return "compiled (mypyc)"
    if compiled:
        return f"partly compiled (mypyc: {', '.join(compiled)})"
    if extensions_refused():
        return f"pure Python ({NO_EXTENSIONS_ENV} is set)"
    return "pure Python (no compiled modules: built without a C compiler, or not built)"
