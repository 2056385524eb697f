"""A network model: one link shared by every connection, and a latency per request.

A Batch node reaches the lake through one NIC: every connection shares its bandwidth, and
every request waits a round trip before its answer starts. On loopback both are free, so a
benchmark there measures nothing a node would see. :class:`Network` puts them back:

- ``link_mbps``: request and response bodies of all connections draw from one pacer. Each
  piece of a body (a time slice of the link, 64 KiB to 1 MiB) reserves the next free slot of
  the link, and its connection sleeps until the slot has passed: before sending a piece of a
  response, after reading a piece of a request. Slots are
  handed out first come, first served, so N busy connections get about 1/N each, and the
  link's total stays at its rate however many connections there are. An idle link banks
  at most 8 ms of credit (a burst of 8 ms worth of bytes), like a token bucket of that
  depth. Headers are free.
- ``latency_ms``: every request waits this long after its body has arrived and before the
  service answers (time to first byte). Waits of parallel requests overlap, as on a network.

The pacer sleeps once per slice (a few hundred wake-ups a second at any rate), so pacing
costs the emulator little CPU. Without ``link_mbps`` bodies move as fast as loopback allows.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

_SLICE_SECONDS = 0.004  # one piece of a body is this much link time...
_MIN_PIECE = 64 * 1024  # ...but never smaller (CPU) nor larger (fairness) than these
_MAX_PIECE = 1024 * 1024
_MIN_SLEEP = 0.001  # shorter waits are left to accumulate: sleep() cannot be that precise
# An idle link banks at most this much time: a sender that falls behind its schedule by the
# time it takes to encrypt and send one piece catches up instead of losing it for good.
_CREDIT_SECONDS = 2 * _SLICE_SECONDS


class Network:
    """The link and latency of one emulator set; thread-safe, reconfigurable while serving."""

    def __init__(self, link_mbps: Optional[float] = None, latency_ms: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._rate: Optional[float] = None  # bytes per second; None: unlimited
        self._latency = 0.0
        self._next_free = 0.0
        self.configure(link_mbps, latency_ms)

    def configure(self, link_mbps: Optional[float] = None, latency_ms: float = 0.0) -> None:
        """Set the link rate (Mbit/s, None for unlimited) and the latency per request (ms)."""
        if link_mbps is not None and not link_mbps > 0:
            raise ValueError("link_mbps must be a positive number of Mbit/s (or None for no "
                             "limit), not %r" % (link_mbps,))
        if not latency_ms >= 0:
            raise ValueError("latency_ms must be zero or more milliseconds, not %r"
                             % (latency_ms,))
        with self._lock:
            self._rate = None if link_mbps is None else link_mbps * 1e6 / 8
            self._latency = latency_ms / 1000.0
            self._next_free = 0.0

    @property
    def link_mbps(self) -> Optional[float]:
        rate = self._rate
        return None if rate is None else rate * 8 / 1e6

    @property
    def latency_ms(self) -> float:
        return self._latency * 1000.0

    @property
    def limited(self) -> bool:
        """Whether bodies are paced (a link rate is set)."""
        return self._rate is not None

    def piece_size(self) -> int:
        """How many bytes of a body to move between two waits."""
        rate = self._rate
        if rate is None:
            return _MAX_PIECE
        return int(min(_MAX_PIECE, max(_MIN_PIECE, rate * _SLICE_SECONDS)))

    def wait_latency(self) -> None:
        """Wait the latency of one request (nothing when it is zero)."""
        latency = self._latency
        if latency > 0:
            time.sleep(latency)

    def transmit(self, nbytes: int) -> None:
        """Take ``nbytes`` of link time: return once the link would have carried them."""
        with self._lock:
            rate = self._rate
            if rate is None or nbytes <= 0:
                return
            now = time.monotonic()
            end = max(now - _CREDIT_SECONDS, self._next_free) + nbytes / rate
            self._next_free = end
        wait = end - time.monotonic()
        if wait > _MIN_SLEEP:
            time.sleep(wait)

    def send(self, sendall: Callable[[memoryview], None], body: memoryview) -> None:
        """Send ``body`` with ``sendall`` at the link's pace, piece by piece."""
        size = self.piece_size()
        for start in range(0, len(body), size):
            piece = body[start:start + size]
            self.transmit(len(piece))
            sendall(piece)

    def receive(self, read: Callable[[int], bytes], length: int) -> bytes:
        """Read ``length`` bytes with ``read`` at the link's pace, piece by piece."""
        size = self.piece_size()
        parts = []
        remaining = length
        while remaining > 0:
            piece = read(min(size, remaining))
            if not piece:
                break  # the client hung up; the caller sees a short body, as without pacing
            parts.append(piece)
            remaining -= len(piece)
            self.transmit(len(piece))
        return b"".join(parts)
