"""``python -m worker doctor``: is this node (or laptop) ready to run tasks?

Offline, it checks that Python and every runtime dependency import, with their versions
(the start task's verification step). Online, it also checks the credential, tokens for
storage and Key Vault, and that the lake root and the vault answer. It never prints a token.
"""

from __future__ import annotations

import importlib
import platform
from typing import IO, List, Tuple

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
]


def check_imports() -> List[Tuple[str, bool, str]]:
    """(distribution, ok, version or error) for every runtime dependency."""
    rows = []
    for module, dist in RUNTIME_MODULES:
        try:
            importlib.import_module(module)
            rows.append((dist, True, _version(dist)))
        except Exception as e:  # report every broken import, not just the first
            rows.append((dist, False, f"{type(e).__name__}: {e}"))
    return rows


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version
    except ImportError:  # pragma: no cover - Python 3.8 has it; kept for odd installs
        return "?"
    try:
        return version(dist)
    except Exception:
        return "?"


def run_doctor(config, offline: bool, out: IO[str]) -> int:
    """Print the checks to ``out``; 0 when all pass, 2 otherwise."""
    from . import __version__

    out.write(f"batch-worker {__version__} on Python {platform.python_version()}\n")
    ok = True
    for dist, good, detail in check_imports():
        ok &= good
        out.write(f"  {'ok ' if good else 'BAD'} {dist} {detail}\n")
    if not offline:
        from .diagnose import check_online

        ok &= check_online(config, out)
    out.write("doctor: all checks passed\n" if ok else "doctor: some checks FAILED (see above)\n")
    return OK if ok else USAGE
