"""Running one task: load the handler, build the context, call it, commit or abort, record.

The runner is the one place where a handler's exceptions are caught broadly: each becomes an
exit code (from the exception's class, see ``errors.py``), a final log line, and a
``result.json``. The order of the end of a task is what makes its outcome trustworthy:

1. the result record's path is checked writable before the handler runs (exit 2 if not);
2. after the handler returned (and no stop was asked), the record is written with status
   ``committing`` and the outputs about to be committed: if it cannot be written, nothing
   is committed;
3. the outputs are committed, all or none (``worker.lake.commit``), shielded from a first
   SIGTERM (a second one rolls the commit back);
4. the record is written again with the final status.
"""

from __future__ import annotations

import collections
import inspect
import json
import logging
import os
import sys
import time
from pathlib import Path

from .batch import (
    TaskInfo,
    clear_failure,
    count_attempt,
    is_deterministic,
    record_failure,
    repeated_failure,
)
from .cancel import Cancellation, shielded, watching
from .config import Config
from .context import Context
from .errors import (
    HANDLER_ERROR,
    OK,
    ConfigError,
    Interrupted,
    RepeatedFailure,
    WorkerError,
    exit_code_of,
    exit_meaning,
    service_details_of,
)
from .handler import Handler, load_handler
from .redact import redact
from .result import Result, check_writable, result_bytes, write_result

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, Dict, Mapping, Optional

log = logging.getLogger("worker")


class RunRequest(collections.namedtuple(
        "RunRequest", "spec params config result_path timeout grace",
        defaults=(None, None, None))):
    """What to run and how, built by the CLI (or a test) from its arguments: the handler
    ``spec``, its ``params`` (a dict), the ``config``, and optionally the ``result_path``
    (Path), the ``timeout`` and the ``grace`` (seconds)."""

    __slots__ = ()


def run_task(request: RunRequest, environ: Optional[Mapping[str, str]] = None) -> Result:
    """Run the handler once and return its result (also written to result.json)."""
    environ = request.config.environ if environ is None else environ
    task = TaskInfo.from_env(environ)
    if task.on_batch:  # off Batch every run is a first attempt: no state file in the cwd
        task = task._replace(attempt=count_attempt(task.task_dir))
    result = Result(handler=request.spec, started=time.time(), params=dict(request.params))
    result.task = {
        "job_id": task.job_id,
        "task_id": task.task_id,
        "node_id": task.node_id,
        "pool_id": task.pool_id,
        "attempt": task.attempt,
    }
    path = request.result_path or task.working_dir / "result.json"
    try:
        check_writable(path)
    except ConfigError as e:
        _record_error(result, e)
        result.ended = time.time()
        _final_line(result)
        return result
    repeat = _repeated_failure(request, task)
    if repeat is not None:  # Batch's retry of a failure that repeats: not run again
        _record_error(result, repeat)
        result.ended = time.time()
        _write_final(path, result, task, request.config)
        _final_line(result)
        return result
    try:
        _run(request, task, result, path)
    finally:
        result.ended = time.time()
        _write_final(path, result, task, request.config)
        _final_line(result)
        _keep_failure(request, task, result)
    return result


def _fingerprint(request: RunRequest) -> str:
    import hashlib  # only where a failure is recorded or read back: 2-3 ms to import

    text = json.dumps([request.spec, request.params], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _repeated_failure(request: RunRequest, task: TaskInfo) -> Optional[RepeatedFailure]:
    """On Batch, the failure this run would only repeat (see worker.batch), as an error."""
    if not task.on_batch:
        return None
    retries = request.config.task_retries
    record = repeated_failure(task.task_dir, task.attempt, retries,
                              lambda: _fingerprint(request))
    if record is None:
        return None
    # The cause first: a reason column or a status line cut to its width still shows it.
    return RepeatedFailure(
        f"{record['message']}; not run again: attempt {record['attempt']} failed so (exit "
        f"{record['exit_code']}), and Batch's retries (maxTaskRetryCount {retries}) would only "
        f"repeat it: fix the cause, then python -m worker rerun {task.job_id} --failed (or az "
        "batch task reactivate)",
        record["exit_code"])


def _keep_failure(request: RunRequest, task: TaskInfo, result: Result) -> None:
    """Keep a deterministic failure for Batch's retries; forget it after a success."""
    if not task.on_batch:
        return
    error = result.error or {}
    if result.exit_code == OK:
        clear_failure(task.task_dir)
    elif is_deterministic(result.exit_code, error.get("code")):
        record_failure(task.task_dir, {
            "attempt": task.attempt, "fingerprint": _fingerprint(request),
            "exit_code": result.exit_code, "code": error.get("code"),
            "message": error.get("message", "")})


def record_usage_failure(
    spec: str, error: WorkerError, config: Config, result_path: Optional[Path] = None
) -> int:
    """Record a task that could not start (bad parameters): final line and result.json."""
    task = TaskInfo.from_env(config.environ)
    result = Result(handler=spec, started=time.time())
    _record_error(result, error)
    result.ended = time.time()
    _write_final(result_path or task.working_dir / "result.json", result, task, config)
    _final_line(result)
    return result.exit_code


def task_key(task: TaskInfo, spec: str, params: Dict[str, Any]) -> str:
    """The task's staging folder below ``.worker-staging/``: the same in every run of the
    task, so a rerun finds what an earlier run left. On Batch the job and task ids; off
    Batch the handler and its parameters stand for the task."""
    if task.on_batch:
        return f"{task.job_id}/{task.task_id}"
    import hashlib  # off Batch only

    text = json.dumps([spec, params], sort_keys=True, default=str)
    return "local/" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _run(request: RunRequest, task: TaskInfo, result: Result, path: Path) -> None:
    config = request.config
    timeout = request.timeout if request.timeout is not None else config.timeout
    grace = request.grace if request.grace is not None else config.grace
    cancellation = Cancellation(grace=grace, timeout=timeout)
    try:
        handler = load_handler(request.spec, request.params)
    except WorkerError as e:
        _record_error(result, e)
        return
    log.info(
        "running %s (attempt %d)%s", request.spec, task.attempt,
        f", timeout {timeout:g}s" if timeout else "",
    )
    ctx = Context(
        config, task, request.params, cancellation,
        logger=logging.getLogger(_logger_name(handler)),
        task_key=lambda: task_key(task, request.spec, request.params),  # when staging
        run_id=f"{task.attempt}-{os.urandom(4).hex()}",
    )
    try:
        _call_and_commit(handler, ctx, request.params, cancellation, result, path)
    finally:
        ctx.abort()  # a no-op after a commit; drops staged writes otherwise
        ctx.close()


def _call_and_commit(
    handler: Handler, ctx: Context, params: Dict[str, Any], cancellation: Cancellation,
    result: Result, path: Path,
) -> None:
    try:
        with watching(cancellation):
            value = _call(handler, ctx, params)
            cancellation.check()  # a stop asked during the call: do not commit
        result.return_value = value
    except BaseException as e:
        error = _translated(e, ctx.config)
        if getattr(error, "commit_staged", False) and not cancellation.requested:
            _commit_then_fail(ctx, result, path, cancellation, error)
            return
        _record_error(result, error, in_handler=True)
        if not isinstance(e, Exception) and not _is_stop(e):
            raise  # SystemExit and friends that the runner does not own
        return
    try:
        _commit(ctx, result, path, cancellation)
    except BaseException as e:
        _record_error(result, e, in_handler=False)
        if not isinstance(e, Exception) and not _is_stop(e):
            raise


def _commit_then_fail(ctx: Context, result: Result, path: Path, cancellation: Cancellation,
                      error: BaseException) -> None:
    """The one failure that keeps what the task staged (``exec --keep-partial``): commit
    it, then record the failure. If the commit itself fails, that is the task's error."""
    log.error("the task failed, but commits what it staged: %s", redact(str(error)))
    try:
        _commit(ctx, result, path, cancellation)
    except BaseException as e:
        _record_error(result, e, in_handler=False)
        if not isinstance(e, Exception) and not _is_stop(e):
            raise
        return
    _record_error(result, error, in_handler=True)


def _commit(ctx: Context, result: Result, path: Path, cancellation: Cancellation) -> None:
    """Record, then commit: a task whose record cannot be written commits nothing."""
    result.outputs = ctx.pending_outputs()
    result.status, result.exit_code = "committing", OK
    if not result.outputs:  # nothing to move: the final record is the only one needed
        result.outputs = ctx.commit()
        result.status = "succeeded"
        return
    try:
        write_result(path, result)
    except OSError as e:
        raise ConfigError(
            f"cannot write the result record {str(path)!r} ({e.strerror}); nothing was "
            "committed: fix the path given by --result or free the disk",
            code="config.result") from None
    with shielded(cancellation):
        result.outputs = ctx.commit()
    result.status = "succeeded"


def _is_stop(error: BaseException) -> bool:
    return isinstance(error, (Interrupted, KeyboardInterrupt, SystemExit))


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


def _translated(error: BaseException, config: Config) -> BaseException:
    """A DuckDB error raised while a handler ran a relation becomes ours (see worker.db)."""
    if "duckdb" not in sys.modules or not isinstance(error, Exception):
        return error
    from .db import translate_error

    return translate_error(error, config) or error


def _record_error(result: Result, error: BaseException, in_handler: bool = False) -> None:
    """Fill the result for a failed run; only a bug in the handler (exit 1) logs its
    traceback, trimmed to the handler's own frames."""
    exit_code = _exit_code(error)
    result.exit_code = exit_code
    result.status = _status_of(error, exit_code)
    result.error = {
        "type": type(error).__name__,
        "code": getattr(error, "code", None) if isinstance(error, (WorkerError, Interrupted))
        else "handler_error",
        "message": redact(_message(error)),
    }
    details = service_details_of(error)
    if details is not None:  # what an Azure service said, with the ids support asks for
        result.error["service"] = {k: redact(v) if isinstance(v, str) else v
                                   for k, v in details.items()}
    if exit_code == HANDLER_ERROR and in_handler and not isinstance(error, SystemExit):
        from .tracebacks import handler_traceback, in_handler_code  # only for a bug

        # A worker error raised with no handler code on the stack (a built-in handler's
        # failure, such as a program exec ran) says all in its message.
        if not isinstance(error, WorkerError) or in_handler_code(error):
            log.error("the handler raised:\n%s", handler_traceback(error).rstrip())
            if not isinstance(error, WorkerError):  # ours say what to fix themselves
                result.note = "; fix the handler where its traceback above points"


def _exit_code(error: BaseException) -> int:
    if isinstance(error, KeyboardInterrupt):  # a handler that installed its own SIGINT
        return 130
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else HANDLER_ERROR
        return code or HANDLER_ERROR
    return exit_code_of(error)


def _message(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return (f"the handler called sys.exit({error.code!r}); return a value instead, or "
                "raise worker.PermanentError or RetryableError to fail with a reason")
    return str(error)


def _status_of(error: BaseException, exit_code: int) -> str:
    if exit_code == 124:
        return "timed_out"
    if isinstance(error, (Interrupted, KeyboardInterrupt)):
        return "cancelled"
    return "failed"


def _write_final(path: Path, result: Result, task: TaskInfo, config: Config) -> None:
    """The final record; a failure here is reported, never a traceback (what the record
    would say is in the log's final line, which follows). On Batch, a copy goes to the
    job's folder in the lake (``worker.jobfiles``), for the tasks whose node is gone."""
    try:
        write_result(path, result)
    except OSError as e:
        log.error("could not write the result record %s: %s", path, e.strerror or e)
    if task.on_batch and config.lake_url:
        from .jobfiles import publish_result

        publish_result(config.lake_url, task.job_id, task.task_id,
                       result_bytes(result), config=config)


def _final_line(result: Result) -> None:
    meaning = exit_meaning(result.exit_code)
    duration = (result.ended or time.time()) - result.started
    if result.exit_code == OK:
        log.info("task succeeded in %.2fs: exit 0 (%s)", duration, meaning)
        return
    error = result.error or {}
    log.error(
        "task %s after %.2fs: exit %d (%s): %s: %s%s",
        result.status, duration, result.exit_code, meaning,
        error.get("type", "?"), error.get("message", ""), result.note,
    )


def _logger_name(handler: Handler) -> str:
    module = getattr(handler.function, "__module__", None) or "handler"
    return module.replace("_worker_handler_", "handler.")
