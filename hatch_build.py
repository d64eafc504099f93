"""stelar's build hook (hatchling): compiles a distribution's hot path with mypyc when it can.

When a wheel or an editable install is built and a C compiler is there, it runs
scripts/build_accelerator.py, which compiles the modules the package names in
``<package>/compiled.py`` (``ACCELERATED``) beside their source. ``package`` is the hook's option
(``[tool.hatch.build.hooks.custom] package = "stelar_ws"``; stelar-core's by default). An editable
install uses the extensions in place; a wheel takes them in (and is then a wheel for this
platform). Without a compiler, or when the build fails, or with ``STELAR_NO_EXTENSIONS`` set, the
build goes on pure: stelar runs its Python source, which is complete. (cibuildwheel builds the
platform wheels this way: pyproject.toml, [tool.cibuildwheel].)

stelar-core's project folder holds this file and the script; a distribution under plugins/
holds links to them, which its sdist carries as files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class AcceleratorHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("STELAR_NO_EXTENSIONS", "") not in ("", "0"):
            return
        root = Path(self.root)
        package = self.config.get("package", "stelar_core")
        script = root / "scripts" / "build_accelerator.py"
        if not script.exists():  # (a build from an sdist without the script: pure)
            return
        command = [sys.executable, str(script), "--if-needed", "--root", str(root), "--package", package]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True)
        self.app.display_info(done.stdout.strip() or done.stderr.strip()[-2000:])
        if done.returncode != 0 or version == "editable":
            return
        # The modules' extensions, and the library mypyc puts their shared code in (at the top).
        extension = (".so", ".pyd")
        built = [path for path in (root / package).rglob("*") if path.suffix in extension]
        built += [path for path in root.glob(f"{package}_accelerator__mypyc*") if path.suffix in extension]
        if built:
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            for path in built:
                build_data["force_include"][str(path)] = str(path.relative_to(root))
