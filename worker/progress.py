"""Progress of many-file transfers: a tqdm bar on a terminal, a log line otherwise.

Batch captures stderr to a file, where a redrawn bar is noise; there a line every few
seconds with bytes, files and rate tells the story.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Optional

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 5.0


class Progress:
    """Thread-safe counter of files and bytes moved; use as a context manager."""

    def __init__(self, what: str, files: int, total_bytes: int, stream=None) -> None:
        """``total_bytes`` 0 means unknown (e.g. footers, whose sizes come with them)."""
        self.what, self.files, self.total_bytes = what, files, total_bytes
        self.done_files = 0
        self.done_bytes = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_log = self._started
        stream = stream or sys.stderr
        self._bar = _tqdm_bar(what, total_bytes, stream) if _is_tty(stream) else None

    def advance(self, nbytes: int) -> None:
        """Record one finished file of ``nbytes``."""
        with self._lock:
            self.done_files += 1
            self.done_bytes += nbytes
            if self._bar is not None:
                self._bar.update(nbytes)
            elif time.monotonic() - self._last_log >= LOG_EVERY_SECONDS:
                self._last_log = time.monotonic()
                self._log_line()

    def _log_line(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        log.info(
            "%s: %d/%d files, %s, %s/s", self.what, self.done_files, self.files,
            _amount(self.done_bytes, self.total_bytes), _size(self.done_bytes / elapsed),
        )

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.files > 1:
            self._log_line()


def _amount(done: int, total: int) -> str:
    """``1.5/4.0 MB`` in the total's unit; just ``1.5 MB`` when the total is unknown (0) or
    was an underestimate."""
    if total <= 0 or done > total:
        return _size(done)
    scale, unit = _unit(total)
    return f"{done / scale:.1f}/{total / scale:.1f} {unit}"


def _size(nbytes: float) -> str:
    scale, unit = _unit(nbytes)
    return f"{nbytes / scale:.1f} {unit}" if scale > 1 else f"{nbytes:.0f} B"


def _unit(nbytes: float):
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if nbytes >= scale:
            return scale, unit
    return 1, "B"


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _tqdm_bar(what: str, total: int, stream) -> Optional[object]:
    from tqdm import tqdm  # only on a terminal, so not on a node's start-up path

    return tqdm(total=total or None, desc=what, unit="B", unit_scale=True, file=stream,
                leave=False)
