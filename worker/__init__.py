"""batch-worker: the node-side runtime for Python batch work on Azure Batch.

Handlers receive a :class:`Context`; they raise :class:`RetryableError` for transient
failures (exit 3) and :class:`PermanentError` for bad input (exit 4). See README.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

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
