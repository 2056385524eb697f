"""A task's files on its node through Batch's file API (``stdout.txt``, ``stderr.txt``,
``wd/result.json``, the harness's ``.worker-failure``): sizes, byte ranges, the last line,
deletion. A task whose node is gone (or that never ran) has no files: Batch answers 404 or
409 (``TaskFilesUnavailable``, ``NodeNotFound``...), which these helpers return as None.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .failures import Where, translate

TAIL = 8192  # bytes read from the end of a file for its last line


def gone(error: Any) -> bool:
    """Whether an SDK error says the file (or the task's node) is not there."""
    status = getattr(error, "status_code", None)
    return status in (404, 409)


_GONE = object()  # what _call returns for a file (or node) that is not there


def _call(doing: str, where: Where, action: Callable[[], Any]) -> Any:
    """``action()``, or ``_GONE`` when Batch says the file or its node is not there; any
    other failure translated at this boundary (the SDK's errors), naming ``doing``."""
    from azure.core.exceptions import HttpResponseError

    try:
        return action()
    except HttpResponseError as e:
        if gone(e):
            return _GONE
        raise translate(e, doing, where) from None
    except Exception as e:
        raise translate(e, doing, where) from None


def size(batch: Any, job_id: str, task_id: str, path: str, where: Where) -> Optional[int]:
    """The file's length, None when it (or its node) is gone."""
    found = _call("reading %s of task %s" % (path, task_id), where,
                  lambda: batch.get_task_file_properties(job_id, task_id, path))
    return None if found is _GONE else int(found.content_length)


def read(batch: Any, job_id: str, task_id: str, path: str, where: Where,
         start: int = 0, end: Optional[int] = None) -> Optional[bytes]:
    """Bytes ``start`` to ``end`` (inclusive; None: to the end) of the file; None when gone."""
    span = None
    if start or end is not None:
        span = "bytes=%d-%s" % (start, "" if end is None else end)
    found = _call("reading %s of task %s" % (path, task_id), where,
                  lambda: b"".join(batch.download_task_file(job_id, task_id, path,
                                                            ocp_range=span)))
    return None if found is _GONE else found


def last_line(batch: Any, job_id: str, task_id: str, path: str, where: Where
              ) -> Optional[str]:
    """The file's last non-empty line (from its last 8 KiB), None when gone or empty."""
    length = size(batch, job_id, task_id, path, where)
    if not length:
        return None
    data = read(batch, job_id, task_id, path, where, max(0, length - TAIL), length - 1)
    lines = [x for x in (data or b"").decode("utf-8", "replace").splitlines() if x.strip()]
    return lines[-1].strip() if lines else None


def delete(batch: Any, job_id: str, task_id: str, path: str, where: Where) -> bool:
    """Delete the file; False when it (or its node) was not there."""
    found = _call("deleting %s of task %s" % (path, task_id), where,
                  lambda: batch.delete_task_file(job_id, task_id, path))
    return found is not _GONE
