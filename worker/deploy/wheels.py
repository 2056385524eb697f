"""The node's wheels: each pin of the lock, for the node's Python and platform, from a cache.

The cache is a flat folder of wheels, shared by every build on this machine; a wheel in it
is used only when its sha256 is one the lock allows and its tags suit the node, so a cache
can never put a wrong file in a package. What is missing is downloaded with the start task's
own tool (``bootstrap/wheelhouse.py``: ``pip download`` for the node's platform, hashes
required) into the cache first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Tuple

from . import lockfile
from .errors import DownloadError
from .source import check_pip

log = logging.getLogger(__name__)


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/batch-worker/wheels`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "batch-worker" / "wheels"


class WheelSelector:
    """Picks, for a pin, the best wheel of the cache the node can install."""

    def __init__(self, python: str, platforms: Sequence[str]) -> None:
        from packaging.tags import compatible_tags, cpython_tags

        version = tuple(int(part) for part in python.split("."))
        abi = "cp%d%d" % version
        tags = list(cpython_tags(version, [abi], list(platforms)))
        tags += list(compatible_tags(version, abi, list(platforms)))
        self._rank = {tag: i for i, tag in reversed(list(enumerate(tags)))}
        self._digests: Dict[Path, str] = {}

    def rank(self, wheel: Path) -> Optional[int]:
        """How much the node prefers the wheel (lower is better), or None if it cannot use it."""
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename

        try:
            _, _, _, tags = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename:
            return None
        ranks = [self._rank[tag] for tag in tags if tag in self._rank]
        return min(ranks) if ranks else None

    def pick(self, pin: lockfile.Pin, candidates: Sequence[Path]) -> Optional[Path]:
        ranked = []
        for wheel in candidates:
            rank = self.rank(wheel)
            if rank is not None and self.digest(wheel) in pin.hashes:
                ranked.append((rank, wheel.name, wheel))
        return min(ranked)[2] if ranked else None

    def digest(self, wheel: Path) -> str:
        if wheel not in self._digests:
            self._digests[wheel] = sha256(wheel)
        return self._digests[wheel]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def collect(pins: Sequence[lockfile.Pin], python: str, cache: Path,
            wheelhouse: ModuleType) -> List[Path]:
    """One cached wheel per pin, for CPython ``python`` on the nodes' platforms; downloads
    what the cache lacks."""
    selector = WheelSelector(python, wheelhouse.PLATFORMS)
    chosen, missing = _from_cache(pins, cache, selector)
    if missing:
        log.info("downloading %d of %d wheels into %s", len(missing), len(pins), cache)
        _download(missing, python, cache, wheelhouse)
        more, still_missing = _from_cache(missing, cache, selector)
        if still_missing:
            names = ", ".join("%s==%s" % (p.name, p.version) for p in still_missing)
            raise DownloadError("no wheel matching the lock's hashes was downloaded for %s"
                                % names)
        chosen.update(more)
    return [chosen[pin.name] for pin in pins]


def _from_cache(pins: Sequence[lockfile.Pin], cache: Path, selector: WheelSelector
                ) -> Tuple[Dict[str, Path], List[lockfile.Pin]]:
    by_project: Dict[str, List[Path]] = {}
    if cache.is_dir():
        for wheel in sorted(cache.glob("*.whl")):
            by_project.setdefault(lockfile.normalize(wheel.name.split("-", 1)[0]), []).append(
                wheel)
    chosen: Dict[str, Path] = {}
    missing = []
    for pin in pins:
        wheel = selector.pick(pin, by_project.get(pin.name, []))
        if wheel is None:
            missing.append(pin)
        else:
            chosen[pin.name] = wheel
    return chosen, missing


def _download(pins: Sequence[lockfile.Pin], python: str, cache: Path,
              wheelhouse: ModuleType) -> None:
    """``pip download`` the pins into a temporary folder, then move them into the cache (so
    that a concurrent build never sees half a file)."""
    check_pip()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=str(cache)) as tmp:
        lock = Path(tmp) / "missing.txt"
        lock.write_text("".join(pin.text for pin in pins), encoding="utf-8")
        target = Path(tmp) / "wheels"
        command = wheelhouse.download_command(sys.executable, lock, python, target)
        result = subprocess.run(command + ["--quiet", "--progress-bar", "off"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise DownloadError("pip download failed: %s" % _last_error(result.stderr))
        for wheel in target.glob("*.whl"):
            os.replace(str(wheel), str(cache / wheel.name))


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and not line.startswith("WARNING")]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no message"])[0]
