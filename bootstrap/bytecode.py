"""Compile an environment's bytecode, leaving out the packages' own test suites.

Run by the start task with the environment's Python (standard library only, Python 3.8+):

    python bytecode.py SITE_PACKAGES

Tasks import from the shared environment, which non-admin tasks cannot write to, so every
module they import must be compiled at install time or it is compiled again in every task.
The test suites that numpy, pyarrow and others ship (29 % of the locked source) are never
imported by a task; skipping them takes a quarter to a third off the compile, the start
task's biggest step (bench/RESULTS.md). Files that do not compile are skipped, as pip and uv
do.
"""

from __future__ import annotations

import os
import py_compile
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import List, Optional, Sequence

#: Directories holding a package's own tests, which no task imports.
TEST_DIR = re.compile(r"^tests?$")


def sources(root: str) -> List[str]:
    """Every .py file under ``root`` outside test directories, largest first."""
    found = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not TEST_DIR.match(d) and d != "__pycache__"]
        found += [os.path.join(directory, n) for n in names if n.endswith(".py")]
    # Largest first, so the last chunks handed out are small and the workers finish together.
    return sorted(found, key=os.path.getsize, reverse=True)


def compile_one(path: str) -> bool:
    try:
        py_compile.compile(path, doraise=True)
        return True
    except (py_compile.PyCompileError, OSError, ValueError):
        return False


def compile_all(paths: Sequence[str]) -> int:
    """Compile ``paths`` on every core; the number that failed."""
    if not paths:
        return 0
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return sum(not ok for ok in pool.map(compile_one, paths, chunksize=8))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1 or not os.path.isdir(args[0]):
        print("usage: bytecode.py SITE_PACKAGES (an existing directory)", file=sys.stderr)
        return 2
    paths = sources(args[0])
    failed = compile_all(paths)
    compiled = len(paths) - failed
    print("bytecode: compiled %d files, %d skipped (they do not compile)" % (compiled, failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
