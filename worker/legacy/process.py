"""``ctx.run``: a legacy program as part of a task, like ``subprocess.run`` with the
harness's guarantees.

- The program runs in its own process group (a new session), with stdin from /dev/null.
- Its stdout and stderr are read line by line (``\\n`` or ``\\r`` ends a line) and logged at
  INFO by the logger ``program.<name>``, each line prefixed with ``[tag]``, so they reach the
  task's log with its format, ids and secret redaction.
- A stop of the task (SIGTERM, SIGINT, the deadline), the call's own ``timeout`` or a
  ``stop`` event sends SIGTERM to the whole group; what is still running after the task's
  grace period gets SIGKILL. When the program exits, what it left running in its group is
  killed; when the task ends, every program still running is killed. No orphan survives.
- Secrets reach the program as environment variables only (``secret_env``), never in its
  arguments.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from ..cancel import Cancellation
from ..errors import (
    ParameterError,
    ProgramFailed,
    ProgramKilled,
    ProgramNotExecutable,
    ProgramNotFound,
    ProgramTimedOut,
    signal_name,
)

log = logging.getLogger(__name__)

_TICK = 0.1  # seconds between checks for a stop while a program runs
_READ = 1 << 16
_LONGEST_LINE = 1 << 16  # a line longer than this is logged in pieces
_DRAIN_S = 1.0  # how long output is still read once the program has exited
_QUOTED = 300  # characters of the program's last line quoted in an error
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Args = Sequence[Union[str, "os.PathLike[str]"]]


class Programs:
    """The programs one task runs: each in its own process group, stopped when the task is
    asked to stop, and killed if still running when the task ends (:meth:`close`)."""

    def __init__(self, cancellation: Cancellation, secrets: Callable[[], Any]) -> None:
        self._cancellation = cancellation
        self._secrets = secrets  # ctx.secrets, opened only when secret_env is used
        self._live: Dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def run(
        self,
        args: Args,
        *,
        cwd: Optional[Union[str, "os.PathLike[str]"]] = None,
        env: Optional[Mapping[str, str]] = None,
        secret_env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        check: bool = True,
        tag: Optional[str] = None,
        capture_output: bool = False,
        text: bool = False,
        stop: Optional[threading.Event] = None,
    ) -> subprocess.CompletedProcess:
        """Run ``args`` to completion; see ``Context.run``."""
        argv = [os.fspath(a) for a in args]
        if not argv:
            raise ValueError("ctx.run needs a program: args is empty")
        environ = dict(os.environ if env is None else env)
        environ.update(self.secret_values(secret_env))
        executable = find_program(argv[0], environ.get("PATH"), cwd)
        running = _Running(argv, tag, capture_output, self._cancellation, stop, timeout)
        proc = self._start(running, executable, cwd, environ)
        try:
            running.pump(proc)
        finally:
            self._reap(proc)
        return running.outcome(proc.returncode, check, text)

    def secret_values(self, secret_env: Optional[Mapping[str, str]]) -> Dict[str, str]:
        """``{VARIABLE: value}`` for ``{VARIABLE: secret name}`` (each value then redacted)."""
        check_variable_names(secret_env or {})
        return {str(name): self._secrets()[secret] for name, secret in (secret_env or {}).items()}

    def kill_all(self) -> None:
        """SIGKILL the process group of every program still running."""
        with self._lock:
            pids = list(self._live)
        for pid in pids:
            _signal_group(pid, signal.SIGKILL)

    def close(self) -> None:
        """At the end of the task: no program outlives it."""
        with self._lock:
            live = list(self._live.values())
        if live:
            log.warning("killing %d program(s) still running at the end of the task",
                        len(live))
        self.kill_all()
        for proc in live:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.error("program %s (pid %d) did not die after SIGKILL", proc.args, proc.pid)

    def _start(self, running: "_Running", executable: str, cwd: Any,
               environ: Dict[str, str]) -> subprocess.Popen:
        if cwd is not None and not os.path.isdir(cwd):
            raise NotADirectoryError(f"ctx.run: cwd {os.fspath(cwd)!r} is not a folder")
        running.logger.info("%srunning: %s", running.prefix, shlex.join(running.argv))
        try:
            proc = subprocess.Popen(
                running.argv, executable=executable, cwd=cwd, env=environ,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True)
        except OSError as e:
            raise _start_error(running.argv[0], executable, e) from None
        with self._lock:
            self._live[proc.pid] = proc
        return proc

    def _reap(self, proc: subprocess.Popen) -> None:
        """Wait for the program (killing its group first if we got here by an exception),
        then forget it."""
        try:
            if proc.returncode is None:  # not reaped, so its group id is still its own
                _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            with self._lock:
                self._live.pop(proc.pid, None)


class _Lines:
    """One output stream of a program, cut into lines."""

    def __init__(self, name: str, capture: bool) -> None:
        self.name = name
        self.pending = b""
        self.captured: Optional[List[bytes]] = [] if capture else None
        self.last = ""

    def feed(self, data: bytes) -> List[str]:
        """Add what was read; return the complete lines."""
        if self.captured is not None:
            self.captured.append(data)
        self.pending += data
        end = max(self.pending.rfind(b"\n"), self.pending.rfind(b"\r"))
        if end < 0:
            if len(self.pending) < _LONGEST_LINE:
                return []
            end = len(self.pending) - 1
        done, self.pending = self.pending[: end + 1], self.pending[end + 1:]
        return self._lines(done)

    def flush(self) -> List[str]:
        done, self.pending = self.pending, b""
        return self._lines(done)

    def _lines(self, data: bytes) -> List[str]:
        text = data.decode("utf-8", "replace").replace("\r", "\n")
        lines = [line.rstrip() for line in text.split("\n") if line.strip()]
        if lines:
            self.last = lines[-1]
        return lines


class _Running:
    """One program from its start to its outcome: output, stop requests, the result."""

    def __init__(self, argv: List[str], tag: Optional[str], capture: bool,
                 cancellation: Cancellation, stop: Optional[threading.Event],
                 timeout: Optional[float]) -> None:
        self.argv, self.tag = argv, tag
        self.name = os.path.basename(argv[0]) or argv[0]
        self.logger = logging.getLogger(f"program.{self.name}")
        self.prefix = f"[{tag}] " if tag else ""
        self.streams = {"stdout": _Lines("stdout", capture), "stderr": _Lines("stderr", capture)}
        self.cancellation, self.stop, self.timeout = cancellation, stop, timeout
        self.started = time.monotonic()
        self.deadline = self.started + timeout if timeout else None
        self.reason: Optional[str] = None  # why we stopped it
        self.term_sent: Optional[float] = None
        self.killed = False

    # -- while it runs ---------------------------------------------------------------------

    def pump(self, proc: subprocess.Popen) -> None:
        """Log its output until it exits (and its output ends), stopping it when asked."""
        selector = selectors.DefaultSelector()
        for name in ("stdout", "stderr"):
            selector.register(getattr(proc, name), selectors.EVENT_READ, self.streams[name])
        exited: Optional[float] = None
        nap = 0.0002
        try:
            while True:
                if selector.get_map():
                    for key, _ in selector.select(_TICK):
                        self._read(selector, key)
                elif exited is None:  # its output is closed: it is ending
                    time.sleep(nap)
                    nap = min(nap * 2, _TICK)
                now = time.monotonic()
                if exited is None and _has_exited(proc.pid):
                    exited = now
                    _signal_group(proc.pid, signal.SIGKILL)  # what it left in its group
                if exited is not None:
                    if not selector.get_map() or now - exited > _DRAIN_S:
                        return
                else:
                    self._watch(proc.pid, now)
        finally:
            for key in list(selector.get_map().values()):
                self._log(key.data, key.data.flush())
            selector.close()

    def _read(self, selector: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
        try:
            data = os.read(key.fd, _READ)
        except OSError:
            data = b""
        if data:
            self._log(key.data, key.data.feed(data))
        else:
            selector.unregister(key.fileobj)
            self._log(key.data, key.data.flush())

    def _log(self, stream: _Lines, lines: List[str]) -> None:
        for line in lines:
            self.logger.info("%s%s", self.prefix, line,
                             extra={"tag": self.tag, "stream": stream.name})

    def _watch(self, pid: int, now: float) -> None:
        """SIGTERM to the group when a stop is asked; SIGKILL after the grace period."""
        if self.reason is None:
            self.reason = self._stop_reason(now)
            if self.reason is not None:
                self.logger.warning("%sstopping %s (%s): SIGTERM to its process group",
                                    self.prefix, self.name, self.reason)
                _signal_group(pid, signal.SIGTERM)
                self.term_sent = now
        elif not self.killed and now - (self.term_sent or now) >= self.cancellation.grace:
            self.logger.warning("%s%s still runs %gs after SIGTERM: SIGKILL to its process "
                                "group", self.prefix, self.name, self.cancellation.grace)
            _signal_group(pid, signal.SIGKILL)
            self.killed = True

    def _stop_reason(self, now: float) -> Optional[str]:
        if self.cancellation.requested:
            return "the task is stopping"
        if self.stop is not None and self.stop.is_set():
            return "asked to stop"
        if self.deadline is not None and now >= self.deadline:
            return f"its timeout of {self.timeout:g}s passed"
        return None

    # -- once it has ended -----------------------------------------------------------------

    def outcome(self, returncode: int, check: bool, text: bool) -> subprocess.CompletedProcess:
        """The CompletedProcess, or the error its end means."""
        seconds = time.monotonic() - self.started
        self.logger.info("%s%s exited with %d after %.2fs", self.prefix, self.name, returncode,
                         seconds)
        if self.reason == "the task is stopping":
            self.cancellation.check()  # raises the task's stop: nothing is committed
        out, err = (self._captured(name, text) for name in ("stdout", "stderr"))
        details = {"cmd": self.argv, "returncode": returncode, "tag": self.tag,
                   "stdout": out, "stderr": err}
        if self.reason is not None and self.reason.startswith("its timeout"):
            raise ProgramTimedOut(
                f"{self.name} ran past its timeout of {self.timeout:g}s{self._on()} and was "
                "stopped; give it a longer timeout", **details)
        if check and returncode < 0:
            raise ProgramKilled(self._killed_message(-returncode), signal_number=-returncode,
                                **details)
        if check and returncode > 0:
            raise ProgramFailed(f"{self.name} exited with {returncode}{self._on()}"
                                f"{self._last_line()}", **details)
        return subprocess.CompletedProcess(self.argv, returncode, out, err)

    def _killed_message(self, number: int) -> str:
        message = f"{self.name} was killed by {signal_name(number)}{self._on()}"
        if number == signal.SIGKILL and self.reason is None:
            return (message + "; nothing in the task sent it: on a node that is most often "
                    "the kernel's OOM killer; give the task more memory (more "
                    "WORKER_REQUIRED_SLOTS, a bigger VM) or run fewer programs at once")
        return message + self._last_line()

    def _on(self) -> str:
        return f" on {self.tag!r}" if self.tag else ""

    def _last_line(self) -> str:
        last = self.streams["stderr"].last or self.streams["stdout"].last
        if not last:
            return " (it printed nothing)"
        return "; its last line: " + (last if len(last) <= _QUOTED else last[:_QUOTED] + "...")

    def _captured(self, name: str, text: bool) -> Union[bytes, str, None]:
        chunks = self.streams[name].captured
        if chunks is None:
            return None
        data = b"".join(chunks)
        return data.decode("utf-8", "replace") if text else data


def check_variable_names(names: Iterable[str]) -> None:
    """Refuse a name that is not an environment variable's (ParameterError, exit 2)."""
    for name in names:
        if not _ENV_NAME.match(str(name)):
            raise ParameterError(
                f"secret_env: {name!r} is not an environment variable name; use letters, "
                "digits and _ (e.g. DB_PASSWORD=db-password)", code="params.secret_env")


def find_program(program: str, path: Optional[str], cwd: Any = None) -> str:
    """The file ``program`` names (searched on ``path`` when it has no ``/``), checked to be
    executable: ProgramNotFound or ProgramNotExecutable (exit 2) otherwise."""
    if "/" in program:
        candidate = program
        if cwd is not None and not os.path.isabs(program):
            candidate = os.path.join(os.fspath(cwd), program)
        if not os.path.exists(candidate):
            raise ProgramNotFound(
                f"program {program!r} not found: no such file; ship it with the task (a "
                "resource file or application package) or fix its path", code=_NOT_FOUND)
        _check_executable(program, candidate)
        return candidate
    found = shutil.which(program, path=path)
    if found:
        return found
    for folder in (path or os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", program)
        if os.path.isfile(candidate):
            _check_executable(program, candidate)
    raise ProgramNotFound(
        f"program {program!r} not found on the PATH; install it on the node (the start "
        "task's WORKER_APT_PACKAGES) or give its full path", code=_NOT_FOUND)


_NOT_FOUND = "program.not_found"
_NOT_EXECUTABLE = "program.not_executable"


def _check_executable(program: str, path: str) -> None:
    if os.path.isdir(path):
        raise ProgramNotExecutable(f"program {program!r} is a folder ({path}), not a program; "
                                   "name the program file itself (e.g. /opt/tool/bin/tool)",
                                   code=_NOT_EXECUTABLE)
    if not os.access(path, os.X_OK):
        raise ProgramNotExecutable(
            f"program {program!r} is not executable ({path} lacks the execute permission); "
            "chmod +x it, or run it through its interpreter (e.g. bash script.sh)",
            code=_NOT_EXECUTABLE)


def _start_error(program: str, executable: str, error: OSError) -> Exception:
    import errno

    if isinstance(error, PermissionError):
        return ProgramNotExecutable(
            f"program {program!r} cannot be executed ({executable}: permission denied); "
            "chmod +x it, or mount its file system with exec", code=_NOT_EXECUTABLE)
    if error.errno == errno.ENOEXEC:
        return ProgramNotExecutable(
            f"program {program!r} cannot be executed ({executable}: exec format error): a "
            "script needs a #! line, a binary must be built for this machine",
            code=_NOT_EXECUTABLE)
    if isinstance(error, FileNotFoundError):
        return ProgramNotFound(
            f"program {program!r} cannot start: {executable} exists but its interpreter "
            "(the #! line) or loader is missing; install it on the node", code=_NOT_FOUND)
    return error


def _has_exited(pid: int) -> bool:
    """True once the process has exited, without reaping it: while it is a zombie its pid,
    and so its process group id, cannot be reused, so signalling the group stays safe."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
