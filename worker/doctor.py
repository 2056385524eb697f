"""``python -m worker doctor``: is this node (or laptop) ready to run tasks?

Offline, it checks that Python and every runtime dependency import, with their versions
(the start task's verification step). Online, it also checks the credential, tokens for
storage and Key Vault, and that the lake root and the vault answer. It never prints a token.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import platform
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import IO, List, Optional, Set, Tuple

from .errors import OK, USAGE

#: The runtime dependencies, as (import name, distribution name).
RUNTIME_MODULES: List[Tuple[str, str]] = [
    ("azure.core", "azure-core"),
    ("azure.identity", "azure-identity"),
    ("azure.storage.filedatalake", "azure-storage-file-datalake"),
    ("azure.keyvault.secrets", "azure-keyvault-secrets"),
    ("duckdb", "duckdb"),
    ("pyarrow", "pyarrow"),
    ("tqdm", "tqdm"),
    ("urllib3", "urllib3"),
    ("certifi", "certifi"),
]

#: Rough import times in ms on a node (Python 3.8), measured alone: the scheduling order.
IMPORT_COST = {
    "azure.storage.filedatalake": 500,
    "azure.identity": 280,
    "azure.keyvault.secrets": 250,
    "pyarrow": 180,
    "azure.core": 170,
    "duckdb": 80,
    "tqdm": 80,
    "urllib3": 50,
    "certifi": 5,
}


def check_imports() -> List[Tuple[str, bool, str]]:
    """(distribution, ok, version or error) for every runtime dependency.

    Each import runs in a child process, as many at once as there are cores: the imports are
    most of the start task's verify step, and a native library that crashes on import
    (a wrong glibc, a corrupt .so) is reported as BAD instead of killing the doctor.
    """
    workers = min(len(RUNTIME_MODULES), os.cpu_count() or 1)
    with _pool(workers) as pool:
        # The slowest imports first, so that the cores finish together.
        by_cost = sorted(RUNTIME_MODULES, key=lambda pair: -IMPORT_COST.get(pair[0], 0))
        futures = {dist: pool.submit(_check_import, module, dist) for module, dist in by_cost}
    return [_outcome(futures[dist], module, dist) for module, dist in RUNTIME_MODULES]


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


def _check_import(module: str, dist: str) -> Tuple[str, bool, str]:
    try:
        importlib.import_module(module)
        return (dist, True, _version(dist))
    except Exception as e:  # report every broken import, not just the first
        return (dist, False, f"{type(e).__name__}: {e}")


def _outcome(future, module: str, dist: str) -> Tuple[str, bool, str]:
    """The check's row; when a crash took its pool down, the check again on its own."""
    try:
        return future.result()
    except BrokenProcessPool:
        pass
    with _pool(1) as alone:
        try:
            return alone.submit(_check_import, module, dist).result()
        except BrokenProcessPool:
            return (dist, False, "importing it crashed the interpreter (a broken native library?)")


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version
    except ImportError:  # pragma: no cover - Python 3.8 has it; kept for odd installs
        return "?"
    try:
        return version(dist)
    except Exception:
        return "?"


class Report:
    """The doctor's lines and tally: ``ok``, ``--`` (skipped) and ``BAD`` with its fix."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.passed = 0
        self.failed = 0
        self.not_configured: List[str] = []
        self._fixes: Set[str] = set()

    def ok(self, what: str) -> bool:
        self.out.write(f"  ok  {what}\n")
        self.passed += 1
        return True

    def bad(self, what: str, error: str, fix: str) -> bool:
        details = error.splitlines() or [""]
        self.out.write(f"  BAD {what}: {details[0]}\n")
        for line in details[1:]:
            self.out.write(f"        {line}\n")
        said = fix in self._fixes
        self.out.write(f"        fix: {'the same as above' if said else fix}\n")
        self._fixes.add(fix)
        self.failed += 1
        return False

    def skip(self, what: str, why: str, not_configured: Optional[str] = None) -> None:
        """A check not made: not configured (named in the summary), or moot after a failure."""
        self.out.write(f"  --  {what}: {why}\n")
        if not_configured:
            self.not_configured.append(not_configured)

    def summary(self, offline: bool) -> str:
        """The last line: never "all checks passed" for what was not checked."""
        if self.failed:
            return f"doctor: {self.failed} of {self.passed + self.failed} checks FAILED (see above)"
        if offline:
            return "doctor: all checks passed (offline: the imports only)"
        if self.not_configured:
            return (f"doctor: {self.passed} checks passed; not configured, so not checked: "
                    + ", ".join(self.not_configured))
        return "doctor: all checks passed"


def run_doctor(config, offline: bool, out: IO[str]) -> int:
    """Print the checks to ``out``; 0 when all pass, 2 otherwise."""
    from . import __version__

    out.write(f"batch-worker {__version__} on Python {platform.python_version()}\n")
    report = Report(out)
    for dist, good, detail in check_imports():
        if good:
            report.ok(f"{dist} {detail}")
        else:
            report.bad(dist, detail, "rebuild the environment (bash starttask.sh, or "
                       "bash bootstrap/devenv.sh for a development one)")
    if not offline:
        from .diagnose import check_online

        check_online(config, report)
    out.write(report.summary(offline) + "\n")
    return USAGE if report.failed else OK
