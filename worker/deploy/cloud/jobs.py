"""The job, through the data plane: created so that it cannot end before its tasks are in,
then told to end when they have all completed.

Batch counts a job without tasks as complete: a job created with ``onAllTasksComplete:
terminatejob`` could end before its first collection of tasks arrives. So the job is created
with ``noaction`` and switched to ``terminatejob`` once every task is in (a switch Batch
allows once and never back). A deploy run again finds the job: the same pool, the same
dependencies setting and environment, active or disabled, and goes on; a job that differs is
a conflict naming the key; a completed job takes no tasks (the fix: a new job id).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from ..errors import ConflictError
from .failures import Where, translate

FINISHED = ("completed", "terminating", "deleting")
_KEYS = {"poolInfo": "[pool] id", "usesTaskDependencies": "the [merge] section",
         "onTaskFailure": "onTaskFailure", "commonEnvironmentSettings": "[job] environment, "
         "lake_url, vault_url or [pool] client_id"}


class JobState:
    """What deploy found or made: the job's state and whether it was new."""

    def __init__(self, state: str, created: bool, ends_itself: bool) -> None:
        self.state, self.created, self.ends_itself = state, created, ends_itself

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def ensure_job(batch: Any, document: Dict[str, Any], where: Where,
               dry_run: bool = False) -> JobState:
    """Create the job (``onAllTasksComplete: noaction`` for now) or check the one there."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    job_id = document["id"]
    existing = _get(batch, job_id, where)
    if existing is None:
        if dry_run:
            return JobState("none", True, False)
        body = copy.deepcopy(document)
        body["onAllTasksComplete"] = "noaction"
        try:
            batch.create_job(body)
            return JobState("active", True, False)
        except ResourceExistsError:  # a create whose answer was lost: compare what is there
            existing = _get(batch, job_id, where)
        except ResourceNotFoundError as e:
            raise translate(e, "creating job %s" % job_id, where) from None
        except Exception as e:  # the SDK's errors, translated at this boundary
            raise translate(e, "creating job %s" % job_id, where) from None
    if existing is None:
        raise ConflictError("job %s was created and is gone again: deploy again" % job_id)
    _check_same(document, existing)
    return JobState(str(existing.get("state") or "active").lower(), False,
                    str(existing.get("onAllTasksComplete") or "").lower() == "terminatejob")


def finish_job(batch: Any, job_id: str, where: Where) -> None:
    """Every task is in: let the job end when they have all completed."""
    try:
        batch.update_job(job_id, {"onAllTasksComplete": "terminatejob"})
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "setting job %s to end when its tasks have" % job_id,
                        where) from None


def _get(batch: Any, job_id: str, where: Where) -> Optional[Dict[str, Any]]:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return batch.get_job(job_id).as_dict()
    except ResourceNotFoundError:
        return None
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "reading job %s" % job_id, where) from None


def _check_same(ours: Dict[str, Any], theirs: Dict[str, Any]) -> None:
    for key, setting in _KEYS.items():
        a, b = _comparable(key, ours.get(key)), _comparable(key, theirs.get(key))
        if a != b:
            raise ConflictError(
                "job %s exists with another %s (%s there, %s in the spec; %s): deploy under "
                "another job id (--set job.id=...), or delete the job first"
                % (ours["id"], key, _text(b), _text(a), setting))


def _comparable(key: str, value: Any) -> Any:
    if key == "poolInfo":
        return str((value or {}).get("poolId") or "").lower()
    if key == "usesTaskDependencies":
        return bool(value)
    if key == "onTaskFailure":
        return str(value or "noaction").lower()
    return sorted((s.get("name"), s.get("value") or "") for s in value or [])


def _text(value: Any) -> str:
    if isinstance(value, list):
        names = [name for name, _ in value]
        return "variables %s" % ", ".join(names) if names else "no variables"
    return str(value)
