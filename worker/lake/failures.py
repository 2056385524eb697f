"""Lake errors raised under an Arrow scan, kept so that the error DuckDB or Arrow reports
(only their text travels through those libraries) can be traced back to ours: arrowfs
remembers them, ``worker.db`` looks them up."""

from __future__ import annotations

import threading
from typing import List, Optional

_failures: List[BaseException] = []
_failures_lock = threading.Lock()


def remember_failure(error: BaseException) -> None:
    """Keep a lake error raised under an Arrow scan, where only its text travels on."""
    with _failures_lock:
        _failures.append(error)
        del _failures[:-16]


def failure_in(message: str) -> Optional[BaseException]:
    """The lake error whose text is in a DuckDB/Arrow error ``message`` (the newest)."""
    with _failures_lock:
        for error in reversed(_failures):
            text = str(error)
            if text and text in message:
                return error
    return None
