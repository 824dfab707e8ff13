"""Compile the per-task hot path with mypyc, in place, next to its Python sources.

    uv run python scripts/native.py [--force] [--clean] [--check]

The coordinator, its policies, the memory store and the metrics recorder run a few
microseconds of Python per task; compiled by mypyc (part of mypy, as black and mypy itself are
shipped) they run about 1.5-1.8x faster. The sources stay the only truth: the same `.py`
files are type-checked and compiled, and without a C compiler (or with `--clean`) Python
imports them as they are. Nothing is rebuilt while every extension is newer than every source
it was built from; `--check` exits 1 when one is stale, which the test suite refuses to run on.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = SRC / "swarmbalancer"


def _hot_path() -> tuple[str, ...]:
    """`swarmbalancer.native.HOT_PATH`, read from its source without importing the package
    (which would import the compiled modules this script may be about to replace)."""
    tree = ast.parse((PACKAGE / "native.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "HOT_PATH":
            return tuple(ast.literal_eval(node.value))  # type: ignore[arg-type]
    raise SystemExit("native: HOT_PATH not found in src/swarmbalancer/native.py")


#: The modules compiled, as paths under src/swarmbalancer: what every task passes through
#: (the list is `swarmbalancer.native.HOT_PATH`, which reports what a process runs).
MODULES: tuple[str, ...] = tuple(f"{m.replace('.', '/')}.py" for m in _hot_path())
#: The shared library mypyc builds for the group (its runtime and the modules' code).
GROUP = "swarmbalancer_native"


def extension_of(source: Path) -> Path:
    """The compiled module Python would import instead of `source`."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return source.with_name(source.stem + suffix)


def built() -> list[Path]:
    """Every extension in the package (a module dropped from the list included) and the group
    library: what a rebuild or `--clean` removes."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return [*sorted(PACKAGE.rglob(f"*{suffix}")), SRC / f"{GROUP}__mypyc{suffix}"]


def stale() -> list[str]:
    """The compiled modules older than a source of the group (any source: mypyc compiles the
    group as one, so a change to one module can change the code of another), and any compiled
    module no longer in the list (Python would still import it instead of its source)."""
    newest = max((PACKAGE / m).stat().st_mtime for m in MODULES)
    listed = {extension_of(PACKAGE / m) for m in MODULES}
    old = [
        m
        for m in MODULES
        if extension_of(PACKAGE / m).exists() and extension_of(PACKAGE / m).stat().st_mtime < newest
    ]
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    unlisted = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob(f"*{suffix}") if p not in listed]
    return old + unlisted


def compiled() -> bool:
    """Is every module of the group compiled?"""
    return all(extension_of(PACKAGE / m).exists() for m in MODULES)


def clean() -> None:
    for path in built():
        path.unlink(missing_ok=True)


def build() -> None:
    """mypyc the group and copy the extensions next to the sources (setuptools' --inplace)."""
    import warnings

    from mypyc.build import mypycify
    from setuptools import setup

    # setuptools reads the project's pyproject.toml (built by hatchling) and warns about it
    warnings.filterwarnings("ignore", module="setuptools")

    work = ROOT / "build" / "native"
    paths = [str((PACKAGE / m).relative_to(ROOT)) for m in MODULES]
    setup(
        name="swarmbalancer-native",
        package_dir={"": "src"},
        ext_modules=mypycify(paths, opt_level="3", group_name=GROUP, target_dir=str(work)),
        script_args=["-q", "build_ext", "--inplace", "--build-temp", str(work / "temp")],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    parser.add_argument("--check", action="store_true", help="exit 1 if one is stale")
    args = parser.parse_args()
    if args.clean:
        clean()
        return 0
    if args.check:
        old = stale()
        if old:
            print(f"stale compiled modules: {', '.join(old)} (run make native)", file=sys.stderr)
        return 1 if old else 0
    if compiled() and not stale() and not args.force:  # up to date: nothing to do
        return 0
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        clean()
        print("native: no C compiler found; swarmbalancer runs as pure Python", file=sys.stderr)
        return 0
    clean()
    os.chdir(ROOT)  # mypyc names modules from paths relative to the working directory
    build()
    for path in built():  # setuptools keeps a cached build's older times: mark them as new
        if path.exists():
            path.touch()
    print(f"native: compiled {len(MODULES)} modules with mypyc", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
