"""The package's lock: the worker's pins joined with the project's requirements.

The project's requirements are resolved by uv for the node (its Python, manylinux x86_64),
wheels only, with hashes, holding the worker's pins fixed as constraints; what they add is
appended to the worker's lock, which stays as it is. A requirement that has no wheel for the
node is an error naming it: nothing is ever built from source.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional

from . import lockfile
from .errors import DownloadError, NoWheelError, UnresolvableError

log = logging.getLogger(__name__)

#: What uv resolves for: the nodes' glibc floor (Ubuntu 20.04 has 2.31) and architecture.
UV_PLATFORM = "x86_64-manylinux_2_28"
PLATFORM_TAG = "manylinux_2_28_x86_64"

_NO_WHEEL_HINT = re.compile(r"(?:Wheels are required for|only found wheels for|"
                            r"Wheels are available for) `([^`]+)`")
_NO_WHEEL_CAUSE = re.compile(r"Because (?:all versions of )?([A-Za-z0-9][A-Za-z0-9._-]*)"
                             r"[^\n]*? ha(?:s|ve) no (?:usable )?wheels")
_NOT_FOUND = re.compile(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package "
                        r"registry")
_NETWORK = re.compile(r"error sending request|Failed to fetch|dns error|timed out|"
                      r"Connection (?:refused|reset)", re.I)


def build_lock(uv: str, worker_lock: Path, requirements: Optional[Path], python: str,
               worker_version: str, exclude_newer: Optional[str] = None) -> str:
    """The text of the package's lock for CPython ``python`` on manylinux x86_64."""
    worker_text = _without_header(worker_lock.read_text(encoding="utf-8"))
    # The first line names the Python: the start task refuses a lock of another Python.
    header = ("# batch-worker lock for Python %s, %s: the package's lock, batch-worker %s's\n"
              "# pins (its locks/%s)" % (python, PLATFORM_TAG, worker_version, worker_lock.name))
    if requirements is None:
        return header + ", as they are.\n" + worker_text
    added = _added_pins(_compile(uv, worker_lock, requirements, python, exclude_newer),
                        worker_text)
    return (header + ", then what %s adds, resolved with them held fixed.\n"
            % requirements.name + worker_text
            + "# From %s:\n" % requirements.name + "".join(pin.text for pin in added))


def _without_header(text: str) -> str:
    first, _, rest = text.partition("\n")
    return rest if first.startswith("# batch-worker lock for Python") else text


def _added_pins(compiled: str, worker_text: str) -> List[lockfile.Pin]:
    pinned = {pin.name for pin in lockfile.parse(worker_text)}
    return [pin for pin in lockfile.parse(compiled) if pin.name not in pinned]


def _compile(uv: str, worker_lock: Path, requirements: Path, python: str,
             exclude_newer: Optional[str]) -> str:
    log.info("resolving %s for CPython %s on %s", requirements, python, PLATFORM_TAG)
    with tempfile.TemporaryDirectory(prefix="worker-lock-") as tmp:
        out = Path(tmp) / "compiled.txt"
        command = _compile_command(uv, worker_lock, requirements.name, python, out)
        if exclude_newer:
            command += ["--exclude-newer", exclude_newer]
        env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", NO_COLOR="1")
        # From the project folder, so that the lock's "# via -r requirements.txt" comments
        # (and -r includes) do not depend on where the build runs.
        result = subprocess.run(command, cwd=str(requirements.parent), env=env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise _resolution_error(result.stderr, requirements, python)
        return out.read_text(encoding="utf-8")


def _compile_command(uv: str, worker_lock: Path, source: str, python: str,
                     out: Path) -> List[str]:
    return [uv, "pip", "compile", source, "--constraint", str(worker_lock),
            "--python-version", python, "--python-platform", UV_PLATFORM,
            "--only-binary", ":all:", "--generate-hashes", "--no-header", "--quiet",
            "--output-file", str(out)]


def _resolution_error(stderr: str, requirements: Path, python: str) -> Exception:
    """The one-line error for uv's explanation of a failed resolution."""
    name = _first(_NO_WHEEL_HINT, stderr) or _first(_NO_WHEEL_CAUSE, stderr)
    if name:
        return NoWheelError(
            "%s: %s has no wheel for CPython %s on %s, and packages are never built from "
            "source; pin a version that ships one, or drop it"
            % (requirements, name, python, PLATFORM_TAG))
    missing = _first(_NOT_FOUND, stderr)
    if missing:
        return UnresolvableError("%s: %s was not found on the package index"
                                 % (requirements, missing))
    reason = _uv_reason(stderr)
    if _NETWORK.search(stderr):
        return DownloadError("%s: the package index could not be reached: %s"
                             % (requirements, reason))
    return UnresolvableError("%s cannot be resolved with the worker's pins: %s"
                             % (requirements, reason))


def _first(pattern: "re.Pattern[str]", text: str) -> str:
    match = pattern.search(text)
    return match.group(1) if match else ""


def _uv_reason(stderr: str) -> str:
    """uv's first cause (or its error), on one line: uv wraps long ones."""
    lines = [line.strip() for line in stderr.splitlines()]
    for marker in ("cause:", "error:"):
        for i, line in enumerate(lines):
            if line.startswith(marker):
                words = [line[len(marker):].strip()]
                for more in lines[i + 1:]:
                    if not more or more.startswith(("cause:", "hint:", "error:")):
                        break
                    words.append(more)
                return " ".join(words)
    return next((line for line in reversed(lines) if line), "uv failed without a message")
