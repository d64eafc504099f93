"""For tests of compiled modules (stelar_core.compiled, a distribution's ``compiled.py``): the
pure Python source of a module, loaded beside whichever implementation runs, so that both can be
given the same input; and whether an extension is built for it."""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def source_file(name: str) -> Path:
    """The ``.py`` file of module ``name`` (which may be running from its extension)."""
    module = importlib.import_module(name)
    assert module.__file__ is not None
    return Path(module.__file__).with_name(name.rpartition(".")[2] + ".py")


@functools.cache
def pure_source(name: str) -> ModuleType:
    """Module ``name`` loaded from its Python source, as a module of its own (once)."""
    spec = importlib.util.spec_from_file_location(f"pure_{name.replace('.', '_')}", source_file(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extension_built(name: str) -> bool:
    """Whether an extension of module ``name`` sits beside its source."""
    source = source_file(name)
    return any(path.name.endswith(EXTENSION_SUFFIXES) for path in source.parent.glob(f"{source.stem}.*"))
