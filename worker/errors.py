"""The exception tree and the exit-code table: the one place both are written.

Every error the harness can end a task with carries its exit code and a stable ``code``
string, so ``cli.main`` can turn any of them into a process exit without a lookup table of
its own. Batch ``exitConditions`` can then act on the codes below (retry on 3, give up on 4).

| code | meaning                                                              |
|------|----------------------------------------------------------------------|
| 0    | success                                                              |
| 1    | the handler raised an unexpected exception (a bug)                   |
| 2    | usage or configuration error (bad handler spec, parameters, config)  |
| 3    | transient failure, worth a retry (RetryableError, Azure 5xx/429)     |
| 4    | permanent input failure (PermanentError: bad input data)             |
| 124  | deadline exceeded (--timeout)                                        |
| 130  | stopped by SIGINT                                                    |
| 143  | stopped by SIGTERM                                                   |
"""

from __future__ import annotations

from typing import Dict

OK = 0
HANDLER_ERROR = 1
USAGE = 2
RETRYABLE = 3
PERMANENT = 4
TIMEOUT = 124
SIGINT = 130
SIGTERM = 143

#: What each exit code means, for the final log line and result.json.
EXIT_MEANINGS: Dict[int, str] = {
    OK: "success",
    HANDLER_ERROR: "the handler raised an unexpected exception",
    USAGE: "usage or configuration error",
    RETRYABLE: "transient failure, worth a retry",
    PERMANENT: "permanent input failure, retrying will not help",
    TIMEOUT: "deadline exceeded",
    SIGINT: "stopped by SIGINT",
    SIGTERM: "stopped by SIGTERM",
}


def exit_meaning(exit_code: int) -> str:
    """The one-phrase meaning of an exit code (unknown codes say so)."""
    return EXIT_MEANINGS.get(exit_code, "unknown exit code")


class WorkerError(Exception):
    """Base of every error the worker raises on purpose; carries its exit code."""

    exit_code = HANDLER_ERROR
    code = "worker_error"

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        if code:
            self.code = code


class UsageError(WorkerError):
    """The command line or a handler spec/parameter is wrong; nothing ran."""

    exit_code = USAGE
    code = "usage"


class HandlerLoadError(UsageError):
    """A handler could not be loaded; ``code`` names the stage that failed."""

    code = "handler.load"


class ParameterError(UsageError):
    """The parameters do not fit the handler's signature or cannot be parsed."""

    code = "params"


class ConfigError(UsageError):
    """A configuration variable is missing or malformed."""

    code = "config"


class RetryableError(WorkerError):
    """Raise this for a transient failure: Batch may retry the task (exit code 3)."""

    exit_code = RETRYABLE
    code = "retryable"


class PermanentError(WorkerError):
    """Raise this for bad input data: retrying will not help (exit code 4)."""

    exit_code = PERMANENT
    code = "permanent"


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


def first_line(error: BaseException) -> str:
    """The first line of an error's message (an SDK error's ``message`` if it has one), or
    its type's name: what one-line errors quote of a library's failure."""
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
