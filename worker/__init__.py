"""batch-worker: the node-side runtime for Python batch work on Azure Batch.

Handlers receive a :class:`Context`; they raise :class:`RetryableError` for transient
failures (exit 3) and :class:`PermanentError` for bad input (exit 4). See docs/handlers.md.
"""

from __future__ import annotations

import sys
import warnings

from .version import __version__


def _quiet_known_warnings() -> None:
    """cryptography warns, on every import under Python 3.8 (the nodes' Python, chosen on
    purpose), that 3.8 support is deprecated: two lines on the stderr of every task and
    command. That one warning is filtered by its message, before azure-identity or the
    storage SDK import cryptography, and without importing cryptography here."""
    if sys.version_info[:2] == (3, 8):
        warnings.filterwarnings(
            "ignore", message=r"Python 3\.8 is no longer supported by the Python core team",
            category=UserWarning,
        )


_quiet_known_warnings()

from .errors import (  # noqa: E402
    Cancelled,
    ConfigError,
    DeadlineExceeded,
    Interrupted,
    PermanentError,
    RetryableError,
    UsageError,
    WorkerError,
)

__all__ = [
    "Cancelled",
    "ConfigError",
    "Context",
    "DeadlineExceeded",
    "Interrupted",
    "PermanentError",
    "RetryableError",
    "UsageError",
    "WorkerError",
    "__version__",
]


def __getattr__(name: str):
    # Context pulls in logging, pathlib and threading: import it when asked for, so that
    # `python -m worker` starts fast (PEP 562 module __getattr__).
    if name == "Context":
        from .context import Context

        return Context
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
