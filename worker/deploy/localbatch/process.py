"""One run of a command line as Batch runs it: the words of the line (no shell), in the
task's working folder, its own process group, stdout and stderr into the task folder's
``stdout.txt`` and ``stderr.txt``; and the moments at which the local node steps in
(``--recover``, ``--terminate``).

An attempt given ``on_exit`` calls it (from a thread of its own) as soon as its process has
ended, so a scheduler can sleep until something happens instead of polling.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..errors import SpecError


class Attempt:
    """A running command line. Batch overwrites a task's stdout.txt and stderr.txt at each
    run; the local node first keeps the previous run's as ``stdout.N.txt``.

    With ``on_exit``, the folder is made and the process started in a thread of the attempt's
    own, which then waits for it and calls ``on_exit``: a scheduler starting 32 tasks does not
    wait for each fork and exec in turn (4-6 ms each on a loaded machine). Until the process
    is there the attempt counts as running; a signal sent before is delivered once it is."""

    def __init__(self, argv: List[str], folder: Path, env: Dict[str, str], number: int,
                 on_exit: Optional[Callable[[], None]] = None):
        self.folder = folder
        self.started = time.monotonic()
        self.started_at = time.time()
        self.ended: Optional[float] = None
        self.error: Optional[str] = None
        self.process: Optional[subprocess.Popen] = None
        self._spawned = threading.Event()
        self._pending: Optional[int] = None  # a signal sent before the process was there
        self._lock = threading.Lock()
        if on_exit is None:
            self._spawn(argv, env, number)
        else:
            _WORKERS.submit(self._run, argv, env, number, on_exit)

    def _spawn(self, argv: List[str], env: Dict[str, str], number: int) -> None:
        try:
            self._prepare(number)
            with (self.folder / "stdout.txt").open("wb") as out, \
                    (self.folder / "stderr.txt").open("wb") as err, self._lock:
                if self._pending == signal.SIGKILL:
                    raise _Cancelled()
                self.process = subprocess.Popen(
                    argv, cwd=str(self.folder / "wd"), env=env, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=err, start_new_session=True)
                if self._pending is not None:
                    os.killpg(self.process.pid, self._pending)
        except _Cancelled:
            self.ended = time.monotonic()
        except OSError as e:  # Batch: the program could not be started
            self.error = "cannot start %s: %s" % (argv[0], e.strerror or e)
            self.ended = time.monotonic()
        finally:
            self._spawned.set()

    def _prepare(self, number: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "wd").mkdir(exist_ok=True)
        for name in ("stdout", "stderr"):
            current = self.folder / (name + ".txt")
            if current.exists() and number > 1:
                current.replace(self.folder / ("%s.%d.txt" % (name, number - 1)))

    def _run(self, argv: List[str], env: Dict[str, str], number: int,
             on_exit: Callable[[], None]) -> None:
        try:
            self._spawn(argv, env, number)
            if self.process is not None:
                self.process.wait()
                self.ended = self.ended or time.monotonic()
        finally:
            on_exit()

    def poll(self) -> Optional[int]:
        """The exit code once the process has ended (negative: killed by that signal)."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is not None and self.ended is None:
            self.ended = time.monotonic()
        return code

    @property
    def finished(self) -> bool:
        if not self._spawned.is_set():
            return False
        return self.process is None or self.poll() is not None

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def signal(self, signum: int) -> None:
        """Signal the task's whole process group (what it started, too)."""
        with self._lock:
            if self.process is None:
                if not self._spawned.is_set():
                    self._pending = signum
                return
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> Optional[int]:
        """SIGKILL the process group and wait: how Batch ends a task past its
        maxWallClockTime, and what a node failure does."""
        self.signal(signal.SIGKILL)
        self._spawned.wait()
        if self.process is None:
            return None
        code = self.process.wait()
        self.ended = self.ended or time.monotonic()
        return code

    def output(self, stream: str) -> str:
        try:
            return (self.folder / (stream + ".txt")).read_text(errors="replace")
        except OSError:
            return ""


class _Cancelled(Exception):
    """Killed before it started: it never starts."""


class _Workers:
    """Daemon threads that start attempts and wait for them, kept for the next attempt once
    theirs has ended: starting a thread costs milliseconds on a loaded machine, a queue
    microseconds. The pool grows to the most attempts that ever ran at once."""

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, function: Callable[..., None], *args: object) -> None:
        with self._lock:
            grow = self._idle == 0
            if not grow:
                self._idle -= 1
        if grow:
            threading.Thread(target=self._loop, name="attempts", daemon=True).start()
        self._queue.put((function, args))

    def _loop(self) -> None:
        while True:
            function, args = self._queue.get()
            try:
                function(*args)
            finally:
                with self._lock:
                    self._idle += 1


_WORKERS = _Workers()


class Trigger:
    """``TASK=WHEN``: a moment in a task's run: seconds after it started (``2.5``), or the
    first time a text appears in its stderr or stdout (``stderr:TEXT``)."""

    def __init__(self, text: str, option: str) -> None:
        task, sep, when = text.partition("=")
        if not sep or not task or not when:
            raise SpecError("%s %r: expected TASK_ID=SECONDS or TASK_ID=stderr:TEXT"
                            % (option, text))
        self.task, self.option = task, option
        self.stream: Optional[str] = None
        self.after: Optional[float] = None
        stream, colon, needle = when.partition(":")
        if colon and stream in ("stderr", "stdout"):
            self.stream, self.text = stream, needle
            if not needle:
                raise SpecError("%s %r: the text to wait for is empty" % (option, text))
        else:
            try:
                self.after = float(when)
            except ValueError:
                raise SpecError("%s %r: %r is neither seconds nor stderr:TEXT / stdout:TEXT"
                                % (option, text, when)) from None
        self.used = False

    def fired(self, attempt: Attempt) -> bool:
        """True once, the first time the moment has come in a running attempt."""
        if self.used or attempt.finished:
            return False
        if self.after is not None:
            hit = attempt.elapsed() >= self.after
        else:
            hit = self.text in attempt.output(self.stream or "stderr")
        self.used = hit
        return hit


def triggers(texts: List[str], option: str) -> Dict[str, Trigger]:
    out: Dict[str, Trigger] = {}
    for text in texts:
        trigger = Trigger(text, option)
        out[trigger.task.lower()] = trigger
    return out
