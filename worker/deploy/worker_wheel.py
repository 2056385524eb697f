"""The worker's own wheel, built reproducibly from the checkout.

The same checkout gives the same wheel bytes: the sources are copied to a fresh folder (no
stale ``build/`` of an earlier build can leak in) with fixed modes, the build backend is
pinned (:data:`BUILD_CONSTRAINTS`, versions that run on every Python the worker supports),
and ``SOURCE_DATE_EPOCH`` fixes the timestamps inside the wheel.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import ToolError

log = logging.getLogger(__name__)

#: The build backend, pinned: setuptools 75.3 is the newest that runs on Python 3.8.
BUILD_CONSTRAINTS = ("setuptools==75.3.4", "wheel==0.45.1")
#: 1980-01-01, the earliest time a zip entry can carry.
SOURCE_DATE_EPOCH = "315532800"
#: What the build reads from the checkout.
_SOURCES = ("pyproject.toml", "README.md", "worker")
_SKIP = ("__pycache__", ".pyc", ".pyo")


def build_worker_wheel(uv: str, checkout: Path, out_dir: Path) -> Path:
    """Build ``batch_worker-*.whl`` from ``checkout`` into ``out_dir``; return its path."""
    log.info("building the worker's wheel from %s", checkout)
    with tempfile.TemporaryDirectory(prefix="worker-wheel-") as tmp:
        source = Path(tmp) / "src"
        for name in _SOURCES:
            _copy(checkout / name, source / name)
        constraints = Path(tmp) / "build-constraints.txt"
        constraints.write_text("\n".join(BUILD_CONSTRAINTS) + "\n", encoding="utf-8")
        command = [uv, "build", "--wheel", "--quiet", "--python", sys.executable,
                   "--build-constraint", str(constraints), "--out-dir", str(out_dir),
                   str(source)]
        env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, UV_PYTHON_DOWNLOADS="never")
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["no message"]
            raise ToolError("building the worker's wheel failed: %s" % lines[-1])
    wheels = sorted(out_dir.glob("batch_worker-*.whl"))
    if len(wheels) != 1:
        raise ToolError("building the worker's wheel left %d wheels in %s" % (len(wheels),
                                                                              out_dir))
    return wheels[0]


def _copy(source: Path, dest: Path) -> None:
    """Copy a file or a tree without caches, every file 0644 and folder 0755."""
    if source.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        shutil.copyfile(str(source), str(dest))
        os.chmod(str(dest), 0o644)
        return
    for root, dirnames, filenames in os.walk(str(source)):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP)
        for name in sorted(filenames):
            if not name.endswith(_SKIP):
                path = Path(root) / name
                _copy(path, dest / path.relative_to(source))
