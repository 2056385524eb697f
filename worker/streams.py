"""Everything a task prints passes through the secret redaction.

Logging redacts its own lines, but a handler may ``print()`` a secret, write it to
``sys.stderr``, warn with it, hand it to a child process that prints it, or call native code
that writes to the file descriptors directly. On Batch, stdout.txt and stderr.txt are the
task's logs, so the harness puts a pipe under file descriptors 1 and 2 for the task's
duration: a thread reads both, replaces every secret read so far with ``***``, and writes
the lines to where they were going. Child processes inherit the pipes, so their output is
covered too. A line is written when it ends (``\\n`` or ``\\r``) or after 0.2 s without one.

Not covered: a secret that one write splits across more than 0.2 s, and output still in
the pipe when the process is killed with SIGKILL (at most the last 64 KiB).
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
from contextlib import contextmanager

from .redact import redact_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Dict, Iterator, List, Optional

log = logging.getLogger(__name__)

_FDS = (1, 2)
_IDLE_FLUSH = 0.2  # seconds a partial line waits for its end
_READ = 1 << 16
_JOIN_TIMEOUT = 5.0


class _Pipe:
    """One redirected descriptor: the pipe's read end and where its lines go."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.target = os.dup(fd)
        read, write = os.pipe()
        self.read = read
        os.dup2(write, fd)
        os.close(write)
        self.pending = b""
        self.since = 0.0

    def take(self, data: bytes) -> None:
        """Add what was read; write every complete line."""
        if not self.pending:
            self.since = time.monotonic()
        self.pending += data
        end = max(self.pending.rfind(b"\n"), self.pending.rfind(b"\r"))
        if end >= 0:
            self._write(self.pending[: end + 1])
            self.pending = self.pending[end + 1:]
            self.since = time.monotonic()

    def flush_if_idle(self, now: float) -> None:
        if self.pending and now - self.since >= _IDLE_FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self._write(self.pending)
            self.pending = b""

    def _write(self, data: bytes) -> None:
        data = redact_bytes(data)
        while data:
            try:
                data = data[os.write(self.target, data):]
            except InterruptedError:
                continue
            except OSError:  # the destination went away: nothing left to protect
                return

    def restore(self) -> None:
        """Point the descriptor back at its destination (closes our write end)."""
        os.dup2(self.target, self.fd)


class RedactedOutput:
    """Redirects descriptors 1 and 2 through the redaction until :meth:`stop`."""

    def __init__(self) -> None:
        self._pipes: List[_Pipe] = []
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "RedactedOutput":
        _flush_python_streams()
        try:
            for fd in _FDS:
                self._pipes.append(_Pipe(fd))
        except OSError:
            for pipe in self._pipes:
                pipe.restore()
            raise
        self._thread = threading.Thread(target=self._pump, name="redact-output", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Restore the descriptors, then write what is still in the pipes."""
        _flush_python_streams()
        for pipe in self._pipes:
            pipe.restore()
        if self._thread is not None:
            # A child still holding the pipe keeps it open; do not wait for it forever.
            self._thread.join(_JOIN_TIMEOUT)
        for pipe in self._pipes:
            for fd in (pipe.read, pipe.target):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._pipes = []

    def _pump(self) -> None:
        open_pipes: Dict[int, _Pipe] = {p.read: p for p in self._pipes}
        while open_pipes:
            ready, _, _ = select.select(list(open_pipes), [], [], _IDLE_FLUSH / 2)
            for fd in ready:
                try:
                    data = os.read(fd, _READ)
                except OSError:
                    data = b""
                if data:
                    open_pipes[fd].take(data)
                else:  # every writer closed it: the task is over
                    open_pipes.pop(fd).flush()
            now = time.monotonic()
            for pipe in open_pipes.values():
                pipe.flush_if_idle(now)


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


@contextmanager
def redacted_output() -> Iterator[None]:
    """Redact what the process (and its children) print while the block runs; a no-op
    where descriptors 1 and 2 cannot be redirected."""
    try:
        output = RedactedOutput().start()
    except OSError as e:
        log.debug("output redaction unavailable: %s", e)
        yield
        return
    try:
        yield
    finally:
        output.stop()
