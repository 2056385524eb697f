"""Progress of the deploy loop's long steps (an upload, adding tasks, watching a job): a tqdm
bar on a terminal, a line every few seconds otherwise (a CI log is not a terminal)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Optional, TextIO

LINE_EVERY = 5.0


class Bar:
    """``advance(n)`` from any thread; ``set(n)`` for an absolute count (watching)."""

    def __init__(self, what: str, total: int, unit: str = "", stream: Optional[TextIO] = None,
                 bytes_: bool = False) -> None:
        self.what, self.total, self.unit, self.done = what, total, unit, 0
        self.stream = stream or sys.stderr
        self._lock = threading.RLock()
        self._last = time.monotonic()
        self._bar: Any = None
        if _is_tty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total or None, desc=what, unit=unit or "it",
                             unit_scale=bytes_, file=self.stream, leave=False)

    def advance(self, n: int) -> None:
        with self._lock:
            self.set(self.done + n)

    def set(self, done: int, note: str = "") -> None:
        with self._lock:
            step, self.done = done - self.done, done
            if self._bar is not None:
                self._bar.update(step)
                if note:
                    self._bar.set_postfix_str(note, refresh=False)
            elif time.monotonic() - self._last >= LINE_EVERY:
                self._last = time.monotonic()
                self._line(note)

    def _line(self, note: str = "") -> None:
        self.stream.write("%s: %d/%d %s%s\n" % (self.what, self.done, self.total, self.unit,
                                                "  " + note if note else ""))
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
