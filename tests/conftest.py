"""Fixtures of stelar-core's own suite (the distributions' suites are under plugins/*/tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Fixtures of the test kits: stelar-core's raw_tcp and gated_tracker come with its pytest
# plugin (pyproject.toml's addopts); these suites also use the kits of stelar-ws and stelar-redis.
from stelar_core.testing.loops import pytest_asyncio_loop_factories  # noqa: F401
from stelar_redis.testing import connect, redis_server  # noqa: F401
from stelar_ws.testing import browser, raw_ws  # noqa: F401

# Examples are cheap; a loaded 2-core machine is not a reason to fail one.
settings.register_profile("stelar", deadline=None)
settings.load_profile("stelar")


# ---------------------------------------------------------------- third-party distributions

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def install_distribution(tmp_path_factory):
    """``install(name)``: pip-install ``tests/fixtures/<name>`` into a private folder (not the
    test environment's site-packages, so no other test sees it); returns that folder."""

    def install(name: str) -> Path:
        source = tmp_path_factory.mktemp("src") / name
        shutil.copytree(FIXTURES / name, source)
        site = tmp_path_factory.mktemp("site")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--no-build-isolation", "--target", str(site), str(source)],
            check=True,
        )  # fmt: skip
        return site

    return install


@pytest.fixture(scope="session")
def python_with():
    """``python_with(site, args, cwd=None)``: a fresh interpreter that can import what is in
    ``site``."""

    def run(site: Path, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(site)}
        return subprocess.run(
            [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
        )

    return run
