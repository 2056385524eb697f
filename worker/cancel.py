"""Two-stage shutdown and the deadline.

The first SIGTERM/SIGINT (or reaching ``--timeout``) only *asks* the handler to stop: the
cancellation flag is set, and :meth:`Cancellation.check` raises at the handler's next check.
If the handler has not returned after the grace period, the stop is raised into it
wherever it is; a second signal raises it at once. The handler runs in the main thread,
where Python delivers signals, so a real signal also interrupts blocking sleeps and I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

from .errors import Cancelled, DeadlineExceeded, Interrupted

try:  # the C module under `signal`: the same calls, without building `signal`'s enums,
    import _signal as signal  # which cost a task's start-up 2.5% on Python 3.8
except ImportError:  # pragma: no cover - an interpreter without it
    import signal  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Iterator, Optional

log = logging.getLogger(__name__)

_STOP_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


class Cancellation:
    """The flag a handler polls, and the stop waiting to be raised into it."""

    def __init__(self, grace: float = 10.0, timeout: Optional[float] = None) -> None:
        self.grace = grace
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout else None
        self.event = threading.Event()
        self.pending: Optional[Interrupted] = None

    @property
    def requested(self) -> bool:
        """True once a stop was asked for."""
        return self.event.is_set()

    def check(self) -> None:
        """Raise the pending stop, if any; handlers call this between units of work."""
        if self.pending is not None:
            raise self.pending

    def time_left(self) -> Optional[float]:
        """Seconds until the deadline (None without one); never negative."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def request(self, stop: Interrupted) -> None:
        """Ask for a stop (idempotent: the first reason wins)."""
        if self.pending is None:
            self.pending = stop
            self.event.set()


def deadline_message(timeout: Optional[float]) -> str:
    """What a task that ran out of time is told: the limit, where it is set, what to do."""
    limit = f"its {timeout:g} s" if timeout else "its"
    return (f"deadline exceeded: the task ran past {limit} limit (--timeout or "
            "WORKER_TIMEOUT); raise the limit, or have the handler check ctx.time_left() and "
            "stop early with what it has done")


@contextmanager
def watching(cancellation: Cancellation) -> Iterator[None]:
    """Route SIGTERM, SIGINT and the deadline to ``cancellation`` while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled in the main thread; in-process test use
        return
    previous = {sig: signal.getsignal(sig) for sig in (*_STOP_SIGNALS, signal.SIGALRM)}

    def on_signal(signum, _frame):
        _first_or_second(cancellation, Cancelled(_STOP_SIGNALS[signum]))

    def on_alarm(_signum, _frame):
        _first_or_second(cancellation, DeadlineExceeded(deadline_message(cancellation.timeout)))

    for sig in _STOP_SIGNALS:
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    left = cancellation.time_left()
    if left is not None:
        signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def shielded(cancellation: Cancellation) -> Iterator[None]:
    """Let the block (the commit) finish through a first SIGTERM or SIGINT; a second one
    stops it at once (the commit then rolls back). A stop asked earlier is not raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    signalled = []

    def on_signal(signum, _frame):
        if signalled:
            raise Cancelled(_STOP_SIGNALS[signum])
        signalled.append(signum)
        log.warning("%s during the commit: finishing it first (a second signal rolls it back)",
                    _STOP_SIGNALS[signum])

    for sig in _STOP_SIGNALS:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _first_or_second(cancellation: Cancellation, stop: Interrupted) -> None:
    """First stop: set the flag and start the grace period. Later: raise at once."""
    if cancellation.requested:
        if isinstance(stop, Cancelled):
            cancellation.pending = stop
        raise cancellation.pending  # type: ignore[misc]
    cancellation.request(stop)
    if cancellation.grace <= 0:
        raise stop
    log.warning(
        "%s: asking the handler to stop; it is interrupted in %gs, or at once on a second signal",
        stop,
        cancellation.grace,
    )
    signal.setitimer(signal.ITIMER_REAL, cancellation.grace)
