"""The batch-worker checkout a package is built from, and the build tools.

The package carries the start task (``starttask.sh``, ``bootstrap/``), the launcher
(``task.sh``), the worker's lock for the node's Python and the worker's own wheel: all from
the checkout that the running ``worker`` package was imported from (an editable install), or
from ``--worker-source``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import List, Optional

from .errors import PackageUsageError, ToolError

#: Files of bootstrap/ that stay in the checkout: lock.sh regenerates the locks.
_DEV_ONLY = ("lock.sh",)


@dataclass(frozen=True)
class WorkerSource:
    """A batch-worker checkout."""

    root: Path

    @classmethod
    def find(cls, explicit: Optional[Path] = None) -> "WorkerSource":
        """The checkout at ``explicit``, else the one the imported ``worker`` lives in."""
        root = explicit or Path(__file__).resolve().parent.parent.parent
        source = cls(root.resolve())
        missing = [name for name in ("starttask.sh", "task.sh", "bootstrap", "locks",
                                     "pyproject.toml", "worker/__init__.py")
                   if not (source.root / name).exists()]
        if missing:
            raise ToolError(
                "%s is not a batch-worker checkout (no %s): build packages from a checkout "
                "(pip install -e '.[deploy]') or pass --worker-source DIR"
                % (source.root, ", ".join(missing)))
        return source

    @property
    def version(self) -> str:
        text = (self.root / "worker" / "version.py").read_text(encoding="utf-8")
        match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
        return match.group(1) if match else "0"

    def lock(self, python: str) -> Path:
        """The worker's hashed lock for Python X.Y."""
        path = self.root / "locks" / ("py%s.txt" % python.replace(".", ""))
        if not path.is_file():
            known = sorted((p.stem[2:] for p in (self.root / "locks").glob("py3*.txt")),
                           key=lambda tag: int(tag[1:] or 0))
            raise PackageUsageError(
                "no worker lock for Python %s (%s); the worker is locked for: %s (pass one of "
                "them to --python)"
                % (python, path, ", ".join("%s.%s" % (k[0], k[1:]) for k in known)))
        return path

    @property
    def tools_lock(self) -> Path:
        return self.root / "bootstrap" / "tools.txt"

    def node_files(self) -> List[Path]:
        """What the package carries from the checkout besides the lock and wheels."""
        bootstrap = sorted(p for p in (self.root / "bootstrap").iterdir()
                           if p.is_file() and p.name not in _DEV_ONLY
                           and p.suffix in (".sh", ".py", ".txt"))
        return [self.root / "starttask.sh", self.root / "task.sh", *bootstrap]

    def wheelhouse(self) -> ModuleType:
        """bootstrap/wheelhouse.py, the start task's wheelhouse tool, as a module."""
        path = self.root / "bootstrap" / "wheelhouse.py"
        spec = importlib.util.spec_from_file_location("_worker_bootstrap_wheelhouse", str(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module


def find_uv() -> str:
    """uv from the ``deploy`` extra, else on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if not found:
        raise ToolError("uv not found: install the build tools with "
                        "pip install -e '.[deploy]' (or put uv on PATH)")
    return found


def check_pip() -> None:
    """pip downloads the node's wheels (bootstrap/wheelhouse.py); it must be importable."""
    result = subprocess.run([sys.executable, "-m", "pip", "--version"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ToolError("pip is not installed in %s: install the build tools with "
                        "pip install -e '.[deploy]'" % sys.executable)
