"""A job's folder in the lake, ``.worker-jobs/<job>/``: what outlives the job's nodes.

``deploy`` (or ``lake put`` after ``spec``) puts the fan-out's items there (``items.json``,
read by the merge task); the harness adds each task's result record
(``results/<task>.json``, the same JSON as the task's ``result.json``), so ``python -m
worker results`` can read the tasks whose node is gone (autoscale releases nodes when their
tasks end; Batch deletes task folders after their retention time).

The record is written after the task's own ``result.json``, on Batch only and when the task
has a lake (``WORKER_LAKE_URL``); a failure to write it is logged and changes nothing else:
the task's outcome is its exit code and its local record.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Optional

from .errors import WorkerError, first_line

log = logging.getLogger(__name__)

JOB_FOLDER = ".worker-jobs/{job_id}"
ITEMS_FILE = JOB_FOLDER + "/items.json"
RESULTS_FOLDER = JOB_FOLDER + "/results"
RESULT_FILE = RESULTS_FOLDER + "/{task_id}.json"


def items_file(job_id: str) -> str:
    """The lake path of the file listing a job's fan-out items (for the merge task)."""
    return ITEMS_FILE.format(job_id=job_id)


def results_folder(job_id: str) -> str:
    """The lake folder of a job's result records."""
    return RESULTS_FOLDER.format(job_id=job_id)


def result_file(job_id: str, task_id: str) -> str:
    """The lake path of one task's result record."""
    return RESULT_FILE.format(job_id=job_id, task_id=task_id)


def publish_result(lake_url: Optional[str], job_id: str, task_id: str, record: bytes,
                   config=None) -> bool:
    """Write a task's result record to its job's folder; False (logged) when it could not."""
    if not lake_url:
        return False
    from .lake import open_store  # a task that never used the lake pays for it here only

    path = result_file(job_id, task_id)
    try:
        store = open_store(lake_url, config=config)
        try:
            store.write_bytes(path, record, hashlib.md5(record).hexdigest())
        finally:
            store.close()
    except (WorkerError, OSError, ValueError) as e:
        log.warning("could not copy the result record to the lake at %s: %s (the task's "
                    "result.json has it)", path, first_line(e))
        return False
    return True
