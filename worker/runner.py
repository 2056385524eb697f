"""Running one task: load the handler, build the context, call it, commit or abort, record.

The runner is the one place where a handler's exceptions are caught broadly: each becomes an
exit code (from the exception's class, see ``errors.py``), a final log line, and a
``result.json``. Outputs are committed only after the handler returned and no stop was asked.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from .batch import TaskInfo, count_attempt
from .cancel import Cancellation, watching
from .config import Config
from .context import Context
from .errors import (
    HANDLER_ERROR,
    OK,
    Interrupted,
    UsageError,
    WorkerError,
    exit_meaning,
)
from .handler import Handler, load_handler
from .redact import redact
from .result import Result, write_result

log = logging.getLogger("worker")
_WORKER_DIR = os.path.dirname(os.path.abspath(__file__))
# asyncio's own frames sit between the harness and an async handler; found without importing it
_ASYNCIO_DIR = os.path.join(os.path.dirname(os.path.abspath(os.__file__)), "asyncio")


@dataclasses.dataclass
class RunRequest:
    """What to run and how; built by the CLI (or a test) from its arguments."""

    spec: str
    params: Dict[str, Any]
    config: Config
    result_path: Optional[Path] = None
    timeout: Optional[float] = None
    grace: Optional[float] = None


def run_task(request: RunRequest, environ: Optional[Mapping[str, str]] = None) -> Result:
    """Run the handler once and return its result (also written to result.json)."""
    environ = request.config.environ if environ is None else environ
    task = TaskInfo.from_env(environ)
    if task.on_batch:  # off Batch every run is a first attempt: no state file in the cwd
        task = dataclasses.replace(task, attempt=count_attempt(task.task_dir))
    result = Result(handler=request.spec, started=time.time(), params=dict(request.params))
    result.task = {
        "job_id": task.job_id,
        "task_id": task.task_id,
        "node_id": task.node_id,
        "pool_id": task.pool_id,
        "attempt": task.attempt,
    }
    try:
        _run(request, task, result)
    finally:
        result.ended = time.time()
        _final_line(result)
        write_result(request.result_path or task.working_dir / "result.json", result)
    return result


def record_usage_failure(
    spec: str, error: WorkerError, config: Config, result_path: Optional[Path] = None
) -> int:
    """Record a task that could not start (bad parameters): final line and result.json."""
    task = TaskInfo.from_env(config.environ)
    result = Result(handler=spec, started=time.time())
    _record_error(result, error, error.exit_code, with_traceback=False)
    result.ended = time.time()
    _final_line(result)
    write_result(result_path or task.working_dir / "result.json", result)
    return result.exit_code


def _run(request: RunRequest, task: TaskInfo, result: Result) -> None:
    config = request.config
    timeout = request.timeout if request.timeout is not None else config.timeout
    grace = request.grace if request.grace is not None else config.grace
    cancellation = Cancellation(grace=grace, timeout=timeout)
    try:
        handler = load_handler(request.spec, request.params)
    except UsageError as e:
        _record_error(result, e, e.exit_code, with_traceback=False)
        return
    log.info(
        "running %s (attempt %d)%s", request.spec, task.attempt,
        f", timeout {timeout:g}s" if timeout else "",
    )
    ctx = Context(
        config, task, request.params, cancellation,
        logger=logging.getLogger(_logger_name(handler)), run_id=_run_id(task),
    )
    try:
        _call_and_commit(handler, ctx, request.params, cancellation, result)
    finally:
        ctx.abort()  # a no-op after a commit; drops staged writes otherwise
        ctx.close()


def _call_and_commit(
    handler: Handler, ctx: Context, params: Dict[str, Any], cancellation: Cancellation,
    result: Result,
) -> None:
    try:
        with watching(cancellation):
            value = _call(handler, ctx, params)
            cancellation.check()  # a stop asked during the call: do not commit
        result.return_value = value
        result.outputs = ctx.commit()
        result.status, result.exit_code = "succeeded", OK
    except Interrupted as e:
        _record_error(result, e, e.exit_code)
    except KeyboardInterrupt as e:  # a handler that installed its own SIGINT handling
        _record_error(result, e, 130)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else HANDLER_ERROR
        _record_error(result, e, code or HANDLER_ERROR, with_traceback=False)
    except WorkerError as e:
        _record_error(result, e, e.exit_code, with_traceback=not isinstance(e, UsageError))
    except Exception as e:
        translated = _translated(e, ctx.config)
        _record_error(result, translated, _exit_code_of(translated))


def _call(handler: Handler, ctx: Context, params: Dict[str, Any]) -> Any:
    if handler.is_async:
        return _run_async(handler.call(ctx, params))
    value = handler.call(ctx, params)
    if inspect.isawaitable(value):  # a sync callable that returned a coroutine
        return _run_async(_await(value))
    return value


def _run_async(coroutine: Any) -> Any:
    import asyncio  # only async handlers pay for it (tens of ms at start-up)

    return asyncio.run(coroutine)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _translated(error: Exception, config: Config) -> Exception:
    """A DuckDB error raised while a handler ran a relation becomes ours (see worker.db)."""
    if "duckdb" not in sys.modules:
        return error
    from .db import translate_error

    return translate_error(error, config) or error


def _exit_code_of(error: BaseException) -> int:
    """Exit code of an exception that is not ours: builtin errors a backend translated."""
    code = getattr(error, "exit_code", None)
    return code if isinstance(code, int) else HANDLER_ERROR


def _record_error(
    result: Result, error: BaseException, exit_code: int, with_traceback: bool = True
) -> None:
    result.exit_code = exit_code
    result.status = _status_of(error, exit_code)
    result.error = {
        "type": type(error).__name__,
        "code": getattr(error, "code", None) if isinstance(error, (WorkerError, Interrupted))
        else "handler_error",
        "message": redact(str(error)),
    }
    if with_traceback and not isinstance(error, (Interrupted, KeyboardInterrupt)):
        log.error("the handler raised:\n%s", handler_traceback(error).rstrip())


def _status_of(error: BaseException, exit_code: int) -> str:
    if exit_code == 124:
        return "timed_out"
    if isinstance(error, (Interrupted, KeyboardInterrupt)):
        return "cancelled"
    return "failed"


def handler_traceback(error: BaseException) -> str:
    """The traceback without the harness's (and asyncio's) own frames at the top."""
    tb = error.__traceback__
    while tb is not None and _is_harness_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def _is_harness_frame(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_WORKER_DIR + os.sep) or path.startswith(_ASYNCIO_DIR + os.sep)


def _final_line(result: Result) -> None:
    meaning = exit_meaning(result.exit_code)
    duration = (result.ended or time.time()) - result.started
    if result.exit_code == OK:
        log.info("task succeeded in %.2fs: exit 0 (%s)", duration, meaning)
        return
    error = result.error or {}
    log.error(
        "task %s after %.2fs: exit %d (%s): %s: %s",
        result.status, duration, result.exit_code, meaning,
        error.get("type", "?"), error.get("message", ""),
    )


def _logger_name(handler: Handler) -> str:
    module = getattr(handler.function, "__module__", None) or "handler"
    return module.replace("_worker_handler_", "handler.")


def _run_id(task: TaskInfo) -> str:
    """Unique per run, readable in the staging folder name."""
    return f"{task.job_id}-{task.task_id}-{task.attempt}-{os.urandom(4).hex()}"
