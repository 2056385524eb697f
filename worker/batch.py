"""What Batch tells a task about itself: ids, directories, and the attempt number.

Batch sets the variables below for every task (not the start task for job and task ids).
It sets no retry counter and re-runs tasks after node failures even with no retries
configured, so the attempt number is counted here, in a file in the task directory. Batch
also retries every non-zero exit up to the task's maxTaskRetryCount, even bad input that no
retry can fix: a deterministic failure is kept beside the count, and the runs in which Batch
would only repeat it end at once with the same exit code (docs/guarantees.md, "Retries of
permanent failures").
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, Callable, Dict, Mapping, Optional

ATTEMPTS_FILE = ".worker-attempts"


class TaskInfo(collections.namedtuple(
        "TaskInfo", "job_id task_id node_id pool_id working_dir task_dir shared_dir on_batch "
        "attempt", defaults=(1,))):
    """A task's identity and directories; local defaults outside Batch: the ids (str),
    ``working_dir`` and ``task_dir`` (Path), ``shared_dir`` (Path or None), ``on_batch``,
    and ``attempt`` (1 on the task's first run on this node)."""

    __slots__ = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str], cwd: Optional[Path] = None) -> TaskInfo:
        """Read the Batch variables; outside Batch use ``local`` ids and the cwd."""
        cwd = Path(cwd or os.getcwd())
        working = Path(environ.get("AZ_BATCH_TASK_WORKING_DIR") or cwd)
        task_dir = Path(environ.get("AZ_BATCH_TASK_DIR") or working)
        shared = environ.get("AZ_BATCH_NODE_SHARED_DIR")
        return cls(
            job_id=environ.get("AZ_BATCH_JOB_ID", "local"),
            task_id=environ.get("AZ_BATCH_TASK_ID", "local"),
            node_id=environ.get("AZ_BATCH_NODE_ID", "local"),
            pool_id=environ.get("AZ_BATCH_POOL_ID", "local"),
            working_dir=working,
            task_dir=task_dir,
            shared_dir=Path(shared) if shared else None,
            on_batch="AZ_BATCH_TASK_ID" in environ,
        )


def count_attempt(task_dir: Path) -> int:
    """Add one to the attempts recorded in ``task_dir`` and return the new count.

    Best effort: a read-only or missing directory gives attempt 1 rather than a failure.
    """
    path = task_dir / ATTEMPTS_FILE
    try:
        previous = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        previous = 0
    attempt = previous + 1
    try:
        tmp = path.with_name(f"{ATTEMPTS_FILE}.{os.getpid()}.tmp")
        tmp.write_text(f"{attempt}\n")
        os.replace(tmp, path)
    except OSError:
        pass
    return attempt


#: The deterministic failure of an earlier run, kept in the task directory (see below).
FAILURE_FILE = ".worker-failure"


def is_deterministic(exit_code: int, code: Optional[str]) -> bool:
    """Failures a retry of the same command repeats: bad input data (exit 4), and a bad
    handler spec or parameter (exit 2 with a ``handler.*`` or ``params.*`` code). Other
    exit-2 failures (a missing role, secret or file system) may be fixed between retries."""
    return exit_code == 4 or (exit_code == 2 and (code or "").startswith(("handler.", "params")))


def record_failure(task_dir: Path, record: Dict[str, Any]) -> None:
    """Keep a deterministic failure for the retries that follow (best effort)."""
    try:
        tmp = task_dir / f"{FAILURE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, task_dir / FAILURE_FILE)
    except OSError:
        pass


def clear_failure(task_dir: Path) -> None:
    try:
        (task_dir / FAILURE_FILE).unlink()
    except OSError:
        pass


def repeated_failure(task_dir: Path, attempt: int, retries: Optional[int],
                     fingerprint: Callable[[], str]) -> Optional[Dict[str, Any]]:
    """The recorded failure this run would repeat, or None.

    Batch runs a task up to 1 + maxTaskRetryCount times in a row (a "round"); a reactivated
    task (``az batch task reactivate``, after a person fixed the cause) starts a new round.
    With the retry count known (``WORKER_TASK_RETRIES``) the run repeats a failure when the
    failure was of the same command in the same round; unknown, never. ``fingerprint()``
    names the command (called only when a failure is recorded)."""
    if retries is None:
        return None
    try:
        record = json.loads((task_dir / FAILURE_FILE).read_text())
        failed = int(record["attempt"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if failed >= attempt or record.get("fingerprint") != fingerprint():
        return None
    if retries >= 0 and (failed - 1) // (retries + 1) != (attempt - 1) // (retries + 1):
        return None
    return record
