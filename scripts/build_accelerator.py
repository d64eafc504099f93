"""Compile stelar's hot path with mypyc, in place (beside the source), when a C compiler is there.

    python scripts/build_accelerator.py              # build (or rebuild) stelar-core's extensions
    python scripts/build_accelerator.py --if-needed  # only when one is missing or older than its source
    python scripts/build_accelerator.py --clean      # remove them: the pure Python source runs
    python scripts/build_accelerator.py --root plugins/stelar-ws --package stelar_ws   # a distribution's

A package names the modules it compiles in ``<package>/compiled.py`` (``ACCELERATED``; for
stelar-core, ``stelar_core.compiled``, which also holds the switch). Without a C compiler, or
without mypy (which brings mypyc), it says so and exits 0: stelar then runs its pure Python
source, which is complete. The build hook (hatch_build.py) runs it when a distribution is
installed, in pip's isolated build environment, which may lack the other stelar distributions:
so it reads the module list without importing the package, and types mypyc cannot see are taken
as ``Any``.
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

CHECKOUT = Path(__file__).resolve().parent.parent
SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


class Project:
    """A distribution's compiled modules: ``package`` under ``root`` (its project folder)."""

    def __init__(self, root: Path, package: str) -> None:
        self.root, self.package = root, package
        # mypyc puts the code the modules share in one library of this name at the top level.
        self.group = f"{package}_accelerator"
        self.modules = self._accelerated()

    def _accelerated(self) -> tuple[str, ...]:
        """``<package>.compiled.ACCELERATED``, read from that one file (stdlib only)."""
        path = self.root / self.package / "compiled.py"
        spec = importlib.util.spec_from_file_location(f"_{self.package}_compiled", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        names: tuple[str, ...] = module.ACCELERATED
        return names

    def sources(self) -> list[Path]:
        return [self.root / (name.replace(".", "/") + ".py") for name in self.modules]

    def built(self) -> list[Path]:
        """The extension files of an earlier build."""
        found = [
            path
            for source in self.sources()
            for path in source.parent.glob(f"{source.stem}.*")
            if path.name.endswith(SUFFIXES)
        ]
        shared = self.root.glob(f"{self.group}__mypyc.*")
        return found + [path for path in shared if path.name.endswith(SUFFIXES)]

    def up_to_date(self) -> bool:
        """Whether every module has an extension newer than its source (and the shared library
        is there): installs that run the hook again (each distribution's environment) change
        nothing."""
        extensions = self.built()
        if not any(path.name.startswith(self.group) for path in extensions):
            return False
        for source in self.sources():
            mine = [
                path
                for path in extensions
                if path.parent == source.parent and path.name.startswith(f"{source.stem}.")
            ]
            if not mine or min(path.stat().st_mtime for path in mine) < source.stat().st_mtime:
                return False
        return True

    def clean(self) -> None:
        for path in self.built():
            path.unlink()
        shutil.rmtree(self.root / "build" / "accelerator", ignore_errors=True)

    def build(self) -> int:
        if compiler() is None:
            print("build_accelerator: no C compiler: stelar runs its pure Python source")
            return 0
        try:
            import mypyc  # noqa: F401
            import setuptools  # noqa: F401
        except ImportError as exc:
            print(f"build_accelerator: {exc.name} is not installed: stelar runs its pure Python source")
            return 0
        self.clean()
        setup = SETUP.format(
            sources=[str(path.relative_to(self.root)) for path in self.sources()],
            group=self.group,
            temp=str(self.root / "build" / "accelerator"),
        )
        done = subprocess.run([sys.executable, "-c", setup], cwd=self.root, capture_output=True, text=True)
        if done.returncode != 0:
            self.clean()  # half a build must not shadow the source
            print(done.stdout + done.stderr, file=sys.stderr)
            print(
                "build_accelerator: the build failed (above): stelar runs its pure Python source",
                file=sys.stderr,
            )
            return 1
        print(f"build_accelerator: compiled {len(self.modules)} modules ({', '.join(self.modules)})")
        return 0

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One build at a time in this project: the distributions' environments are installed in
        parallel (scripts/distribution_tests.py), each running the build hooks, and a second
        build would clean the first one's output. The next one then finds it up to date."""
        if sys.platform == "win32":  # no fcntl (and no parallel installs of a checkout to guard)
            yield
            return
        import fcntl

        lock = self.root / "build" / "accelerator.lock"
        lock.parent.mkdir(exist_ok=True)
        with lock.open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield


def compiler() -> str | None:
    """The C compiler Python's build would use, if it is there."""
    configured = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(configured) or shutil.which("cc")


# A setuptools build of the extensions alone (a Distribution of its own: setup() would read the
# project's pyproject.toml, which hatchling builds).
SETUP = """
from mypyc.build import mypycify
from setuptools import Distribution

# (No config file: the project's strict settings are for its checks, not for compiling.)
flags = ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent"]
modules = mypycify([*{sources!r}, *flags], opt_level="3", group_name={group!r})
dist = Distribution({{"name": "{group}", "ext_modules": modules}})
command = dist.get_command_obj("build_ext")
command.inplace, command.build_temp = True, {temp!r}
dist.run_command("build_ext")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="remove the extensions")
    parser.add_argument("--if-needed", action="store_true", help="build only when out of date")
    parser.add_argument("--root", type=Path, default=CHECKOUT, help="the distribution's project folder")
    parser.add_argument("--package", default="stelar_core", help="its package")
    args = parser.parse_args()
    project = Project(args.root.resolve(), args.package)
    with project.exclusive():
        if args.clean:
            project.clean()
            return 0
        if args.if_needed and project.up_to_date():
            print(f"build_accelerator: the compiled modules of {args.package} are up to date")
            return 0
        return project.build()


if __name__ == "__main__":
    sys.exit(main())
