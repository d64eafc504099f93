"""Compile stelar's hot path with mypyc, in place (beside the source), when a C compiler is there.

    python scripts/build_accelerator.py              # build (or rebuild) the extensions
    python scripts/build_accelerator.py --if-needed  # only when one is missing or older than its source
    python scripts/build_accelerator.py --clean      # remove them: the pure Python source runs

The modules are those of ``stelar_core.compiled.ACCELERATED``. Without a C compiler, or without
mypy (which brings mypyc), it says so and exits 0: stelar then runs its pure Python source, which
is complete. The build hook (hatch_build.py) runs it when stelar-core is installed, in an
environment that has mypy and setuptools but not stelar's own dependencies: so it reads the
module list without importing the package, and types mypyc cannot see are taken as ``Any``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def accelerated() -> tuple[str, ...]:
    """``stelar_core.compiled.ACCELERATED``, read from that one file (stdlib only)."""
    spec = importlib.util.spec_from_file_location("_stelar_compiled", ROOT / "stelar_core" / "compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names: tuple[str, ...] = module.ACCELERATED
    return names


ACCELERATED = accelerated()

SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)
# mypyc puts the code shared by the modules in one library of this name at the top level.
GROUP = "stelar_core_accelerator"


def sources() -> list[Path]:
    return [ROOT / (name.replace(".", "/") + ".py") for name in ACCELERATED]


def built() -> list[Path]:
    """The extension files of an earlier build."""
    found = [
        path
        for source in sources()
        for path in source.parent.glob(f"{source.stem}.*")
        if path.name.endswith(SUFFIXES)
    ]
    return found + [path for path in ROOT.glob(f"{GROUP}__mypyc.*") if path.name.endswith(SUFFIXES)]


def up_to_date() -> bool:
    """Whether every module has an extension newer than its source (and the shared library is
    there): installs that run the hook again (each distribution's environment) change nothing."""
    extensions = built()
    if not any(path.name.startswith(GROUP) for path in extensions):
        return False
    for source in sources():
        mine = [
            path
            for path in extensions
            if path.parent == source.parent and path.name.startswith(f"{source.stem}.")
        ]
        if not mine or min(path.stat().st_mtime for path in mine) < source.stat().st_mtime:
            return False
    return True


def compiler() -> str | None:
    """The C compiler Python's build would use, if it is there."""
    configured = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(configured) or shutil.which("cc")


def clean() -> None:
    for path in built():
        path.unlink()
    shutil.rmtree(ROOT / "build" / "accelerator", ignore_errors=True)


# A setuptools build of the extensions alone (a Distribution of its own: setup() would read the
# project's pyproject.toml, which hatchling builds).
SETUP = """
from mypyc.build import mypycify
from setuptools import Distribution

# (No config file: the project's strict settings are for its checks, not for compiling.)
flags = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]
modules = mypycify([*{sources!r}, *flags], opt_level="3", group_name={group!r})
dist = Distribution({{"name": "stelar-core-accelerator", "ext_modules": modules}})
command = dist.get_command_obj("build_ext")
command.inplace, command.build_temp = True, {temp!r}
dist.run_command("build_ext")
"""


def build() -> int:
    if compiler() is None:
        print("build_accelerator: no C compiler: stelar runs its pure Python source")
        return 0
    try:
        import mypyc  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError as exc:
        print(f"build_accelerator: {exc.name} is not installed: stelar runs its pure Python source")
        return 0
    clean()
    setup = SETUP.format(
        sources=[str(path.relative_to(ROOT)) for path in sources()],
        group=GROUP,
        temp=str(ROOT / "build" / "accelerator"),
    )
    done = subprocess.run([sys.executable, "-c", setup], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        clean()  # half a build must not shadow the source
        print(done.stdout + done.stderr, file=sys.stderr)
        print(
            "build_accelerator: the build failed (above): stelar runs its pure Python source", file=sys.stderr
        )
        return 1
    print(f"build_accelerator: compiled {len(ACCELERATED)} modules ({', '.join(ACCELERATED)})")
    return 0


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """One build at a time in this checkout: the distributions' environments are installed in
    parallel (scripts/distribution_tests.py), each running the build hook, and a second build
    would clean the first one's output. The next one then finds it up to date."""
    if sys.platform == "win32":  # no fcntl (and no parallel installs of a checkout to guard)
        yield
        return
    import fcntl

    lock = ROOT / "build" / "accelerator.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="remove the extensions")
    parser.add_argument("--if-needed", action="store_true", help="build only when out of date")
    args = parser.parse_args()
    with exclusive():
        if args.clean:
            clean()
            return 0
        if args.if_needed and up_to_date():
            print("build_accelerator: the compiled modules are up to date")
            return 0
        return build()


if __name__ == "__main__":
    sys.exit(main())
