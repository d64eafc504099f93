"""stelar-ws's build hook: stelar-core's accelerator hook, which compiles ``stelar_ws.compiled``'s
modules with mypyc when it can (docs/install.md). In the checkout, scripts/ links to stelar-core's
hook and build script; the sdist carries them as files there."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def get_build_hook() -> Any:  # (how hatchling asks a hook file for its class)
    path = Path(__file__).parent / "scripts" / "accelerator_hook.py"
    spec = importlib.util.spec_from_file_location("stelar_accelerator_hook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AcceleratorHook
