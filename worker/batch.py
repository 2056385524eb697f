"""What Batch tells a task about itself: ids, directories, and the attempt number.

Batch sets the variables below for every task (not the start task for job and task ids).
It sets no retry counter and re-runs tasks after node failures even with no retries
configured, so the attempt number is counted here, in a file in the task directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

ATTEMPTS_FILE = ".worker-attempts"


@dataclass(frozen=True)
class TaskInfo:
    """A task's identity and directories; local defaults outside Batch."""

    job_id: str
    task_id: str
    node_id: str
    pool_id: str
    working_dir: Path
    task_dir: Path
    shared_dir: Optional[Path]
    on_batch: bool
    attempt: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str], cwd: Optional[Path] = None) -> "TaskInfo":
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
