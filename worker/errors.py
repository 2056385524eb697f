"""The exception tree and the exit-code table: the one place both are written.

Every error the worker raises carries its exit code and a stable ``code`` string, so the
runner turns any of them into a process exit without a lookup table of its own, and Batch
``exitConditions`` can act on the codes below. Every layer (lake, secrets, identity,
DuckDB, the commit) raises the classes defined here, so no layer imports another to name
an error. Errors about files and secrets also subclass the builtin a Python programmer
would catch (``FileNotFoundError``, ``PermissionError``, ``KeyError``, ``FileExistsError``).

| code | meaning                                                                       |
|------|-------------------------------------------------------------------------------|
| 0    | success                                                                       |
| 1    | a bug in the handler (an unexpected exception), or a program it ran failed    |
| 2    | configuration or deployment: a bad setting, handler spec or parameter, an     |
|      | identity without a role, a missing secret or file system, an untrusted CA     |
| 3    | transient, worth a retry: throttling, 5xx, timeouts, dropped connections,     |
|      | IMDS unavailable, a file that changed while it was read                       |
| 4    | bad input data: a missing or corrupt input file; retrying will not help       |
| 5    | commit conflict: another run committed different content at an output path    |
| 124  | deadline exceeded (--timeout, or a program's own timeout)                     |
| 130  | stopped by SIGINT                                                             |
| 143  | stopped by SIGTERM                                                            |
| 128+N| a legacy program was killed by signal N (137: SIGKILL, often the OOM killer)  |

A legacy program's non-zero exit is exit 1, or its own code with ``--pass-exit-code``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, Dict, Optional


OK = 0
HANDLER_ERROR = 1
USAGE = 2
RETRYABLE = 3
PERMANENT = 4
CONFLICT = 5
TIMEOUT = 124
SIGINT = 130
SIGTERM = 143
#: A program killed by signal N ends the task with SIGNALLED + N, as a shell reports it.
SIGNALLED = 128

#: What each exit code means, for the final log line and result.json.
EXIT_MEANINGS: Dict[int, str] = {
    OK: "success",
    HANDLER_ERROR: "a bug in the handler, or a program it ran failed",
    USAGE: "configuration or deployment error",
    RETRYABLE: "transient failure, worth a retry",
    PERMANENT: "bad input data, retrying will not help",
    CONFLICT: "commit conflict with another run",
    TIMEOUT: "deadline exceeded",
    SIGINT: "stopped by SIGINT",
    SIGTERM: "stopped by SIGTERM",
}


def exit_meaning(exit_code: int) -> str:
    """The one-phrase meaning of an exit code (unknown codes say so)."""
    if exit_code in EXIT_MEANINGS:
        return EXIT_MEANINGS[exit_code]
    if SIGNALLED < exit_code < SIGNALLED + 65:
        return f"a program was killed by {signal_name(exit_code - SIGNALLED)}"
    return "the handler's or program's own exit code (sys.exit, --pass-exit-code)"


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 99`` for a number without a name."""
    import signal  # cheap, and only for a program killed by a signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class WorkerError(Exception):
    """Base of every error the worker raises on purpose; carries its exit code.

    ``commit_staged`` (False unless set on the instance) asks the runner to commit what the
    task staged before it records the failure: the one exception to "a failed task commits
    nothing", used by ``exec --keep-partial``.
    """

    exit_code = HANDLER_ERROR
    code = "worker_error"
    commit_staged = False

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        if code:
            self.code = code

    def __str__(self) -> str:  # KeyError and OSError subclasses would show their args
        return str(self.args[0]) if self.args else ""


# -- exit 2: configuration and deployment ------------------------------------------------


class UsageError(WorkerError):
    """Something to fix in the deployment before the task can run (exit 2)."""

    exit_code = USAGE
    code = "usage"


class HandlerLoadError(UsageError):
    """A handler could not be loaded; ``code`` names the stage that failed."""

    code = "handler.load"


class ParameterError(UsageError):
    """The parameters do not fit the handler's signature or cannot be parsed."""

    code = "params"


class ConfigError(UsageError):
    """A configuration variable is missing, malformed, or names something unusable."""

    code = "config"


class AccessDenied(ConfigError, PermissionError):
    """The identity has no token, or no role for what it asked (401, 403, unknown identity)."""

    code = "access_denied"


class FileSystemNotFound(ConfigError, FileNotFoundError):
    """The lake URL's file system (container) does not exist."""

    code = "lake.filesystem_not_found"


class SecretNotFound(ConfigError, KeyError):
    """A secret the backend does not have; the message names secret and source."""

    code = "secret_not_found"


class ProgramNotFound(ConfigError, FileNotFoundError):
    """A legacy program is not on the node (not on the PATH, or its interpreter is missing)."""

    code = "program.not_found"


class ProgramNotExecutable(ConfigError, PermissionError):
    """A legacy program exists but cannot be executed (no execute permission, a folder,
    an exec format error)."""

    code = "program.not_executable"


# -- exit 3: transient -------------------------------------------------------------------


class RetryableError(WorkerError):
    """Raise this for a transient failure: Batch may retry the task (exit code 3)."""

    exit_code = RETRYABLE
    code = "retryable"


# -- exit 4: bad input data --------------------------------------------------------------


class PermanentError(WorkerError):
    """Raise this for bad input data: retrying will not help (exit code 4)."""

    exit_code = PERMANENT
    code = "permanent"


class InputDataError(PermanentError):
    """Input data that cannot be read: a corrupt file, a bad value (exit 4)."""

    code = "input_data"


class InputNotFound(PermanentError, FileNotFoundError):
    """A lake file or folder a task reads does not exist (exit 4)."""

    code = "lake.not_found"


# -- exit 5: commit conflict -------------------------------------------------------------


class CommitConflict(WorkerError, FileExistsError):
    """Another run committed different content at an output path, or is committing the
    same outputs right now (exit 5). Nothing of this run is left at the final paths."""

    exit_code = CONFLICT
    code = "commit.conflict"


# -- a retry of a permanent failure ------------------------------------------------------


class RepeatedFailure(WorkerError):
    """A retry of a deterministic failure, not run again: it ends with the code of the
    failure it repeats (exit 4, or 2 for a bad handler spec or parameter)."""

    code = "retry.repeated_failure"

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- exit 1: bugs ------------------------------------------------------------------------


class SqlError(WorkerError):
    """The SQL is wrong: syntax, an unknown table or column, a type mismatch (exit 1)."""

    code = "sql"


class DuckDBMemoryError(WorkerError):
    """A query needed more than the task's ``memory_limit`` even with spilling (exit 1)."""

    code = "duckdb.memory"


# -- legacy programs (exit 1, the program's own code, 128+N, 124) -----------------------


class ProgramError(WorkerError):
    """A legacy program run by ``ctx.run`` or ``exec`` did not succeed. ``args`` of the
    program (``cmd``), its ``returncode``, ``tag`` (the input it ran for) and, when
    captured, ``stdout`` and ``stderr``, like ``subprocess.CalledProcessError``."""

    code = "program.error"

    def __init__(self, message: str, *, cmd: Any = None, returncode: Optional[int] = None,
                 tag: Optional[str] = None, stdout: Any = None, stderr: Any = None) -> None:
        super().__init__(message)
        self.cmd, self.returncode, self.tag = cmd, returncode, tag
        self.stdout, self.stderr = stdout, stderr


class ProgramFailed(ProgramError):
    """The program exited with a non-zero code (exit 1; ``exec --pass-exit-code`` sets
    ``exit_code`` to the program's own)."""

    code = "program.failed"


class ProgramKilled(ProgramFailed):
    """The program was killed by a signal it did not send itself (exit 128 + the signal's
    number: 137 for SIGKILL, which on a node is most often the kernel's OOM killer)."""

    code = "program.killed"

    def __init__(self, message: str, *, signal_number: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.signal_number = signal_number
        self.exit_code = SIGNALLED + signal_number


class ProgramTimedOut(ProgramError):
    """The program ran past its own ``timeout`` and was stopped (exit 124, like
    coreutils' ``timeout``)."""

    exit_code = TIMEOUT
    code = "program.timeout"


# -- stops -------------------------------------------------------------------------------


class Interrupted(BaseException):
    """Raised into a handler that was asked to stop.

    A ``BaseException`` on purpose, like ``KeyboardInterrupt``: a handler's
    ``except Exception`` must not swallow the harness's request to stop.
    """

    exit_code = SIGTERM
    code = "interrupted"


class Cancelled(Interrupted):
    """The task was stopped by SIGTERM (exit 143) or SIGINT (exit 130)."""

    code = "cancelled"

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name
        self.exit_code = SIGINT if signal_name == "SIGINT" else SIGTERM


class DeadlineExceeded(Interrupted):
    """The task ran past ``--timeout`` (exit 124)."""

    exit_code = TIMEOUT
    code = "deadline"


def service_details_of(error: BaseException) -> Optional[Dict[str, Any]]:
    """What an Azure service said of the failure behind ``error``: ``status``,
    ``error_code``, ``message``, ``request_id`` (its ``x-ms-request-id``) and
    ``client_request_id`` (ours, the same in every retry), as the boundary that translated
    the failure recorded them (``service_details`` on the error or on one it was raised
    from); None when no service answered or nothing was recorded."""
    seen = set()
    link: Optional[BaseException] = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        details = getattr(link, "service_details", None)
        if isinstance(details, dict):
            return details
        link = link.__cause__ or link.__context__
    return None


def describe_service(details: Dict[str, Any]) -> str:
    """``404 BlobNotFound: The specified blob does not exist.; x-ms-request-id R; client
    request id C``: the words and ids to quote in a one-line error (support asks for them)."""
    said = " ".join(str(details[k]) for k in ("status", "error_code") if details.get(k))
    if details.get("message"):
        said = f"{said}: {details['message']}" if said else str(details["message"])
    ids = [f"x-ms-request-id {details['request_id']}" if details.get("request_id") else "",
           f"client request id {details['client_request_id']}"
           if details.get("client_request_id") else ""]
    return "; ".join(part for part in [said, *ids] if part)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (an SDK error's ``message`` if it has one), or
    its type's name: what one-line errors quote of a library's failure."""
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def exit_code_of(error: BaseException) -> int:
    """The exit code an exception ends a task with: its own, else 1 (a bug)."""
    code = getattr(error, "exit_code", None)
    return code if isinstance(code, int) else HANDLER_ERROR
