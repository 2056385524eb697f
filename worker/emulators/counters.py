"""Counters of requests served, per service and operation.

Tests use them to assert how many calls a piece of code makes (for example that a second
read hits a cache, or that a retry happened exactly once).
"""

from __future__ import annotations

import collections
import threading
from typing import Dict, Optional


class Counters:
    """Thread-safe ``(service, operation) -> count``."""

    def __init__(self) -> None:
        self._counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def add(self, service: str, operation: str) -> None:
        with self._lock:
            self._counts[(service, operation)] += 1

    def snapshot(self, service: Optional[str] = None) -> Dict[str, int]:
        """``{"lake.read": 3, ...}``, or ``{"read": 3}`` for one service."""
        with self._lock:
            items = list(self._counts.items())
        if service is None:
            return {"%s.%s" % key: n for key, n in items}
        return {op: n for (svc, op), n in items if svc == service}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
