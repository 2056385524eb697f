"""Adding a job's tasks so that a deploy interrupted anywhere and run again ends with exactly
one task per item: collections of at most 100 tasks and under 1 MB (``collections``), several
in flight, each task's outcome read from the answer.

- ``success``: added.
- ``clientError`` ``TaskExists``: an earlier run (or a request whose answer was lost) added
  it; the task is read back and counts as done when its definition is ours, else it is a
  conflict (the job id is used by other work).
- any other ``clientError``: reported with the task's id, the service's code and message;
  never retried (the same request would be refused again).
- ``serverError``, or a whole request that failed with 5xx, 429 or a lost connection: tried
  again in the next round (with backoff), the task alone, never the tasks that were added.
- ``RequestBodyTooLarge``: the collection is split in two and both halves go again.

Before the first round, the tasks the job already has are listed once (1,000 a request) and
compared, so a second run sends only the missing ones.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..documents import collections
from ..errors import CloudTransient, ConflictError, TaskAddError
from .failures import Where, service_words, translate
from .listing import list_tasks

#: The fields a task's definition is compared on (the rest is Batch's state).
DEFINITION_FIELDS = ["id", "displayName", "commandLine", "environmentSettings", "constraints",
                     "requiredSlots", "dependsOn", "exitConditions"]
ROUNDS = 8
BACKOFF = 1.0  # seconds before the second round, doubled each round, at most 30
CONCURRENCY = 4
UNLIMITED = 10 ** 9  # seconds: Batch reports an unset maxWallClockTime as ~29,000 years


@dataclass
class AddReport:
    """What happened to the tasks of one deploy."""

    added: int = 0
    present: int = 0  # already there with our definition
    refused: List[Tuple[str, str, str]] = field(default_factory=list)  # id, code, message
    conflicts: List[Tuple[str, List[str]]] = field(default_factory=list)  # id, fields

    def check(self, job_id: str) -> None:
        """Raise for conflicts and refused tasks (one line, the first few named)."""
        if self.conflicts:
            shown = "; ".join("%s (%s)" % (tid, ", ".join(keys)) for tid, keys in
                              self.conflicts[:5])
            raise ConflictError(
                "job %s already has %d task(s) with these ids and another definition: %s%s: "
                "deploy under another job id (--set job.id=...), or delete the job first"
                % (job_id, len(self.conflicts), shown, _more(self.conflicts)))
        if self.refused:
            shown = "; ".join("task %s: %s: %s" % r for r in self.refused[:5])
            raise TaskAddError("Batch refused %d task(s) of job %s: %s%s: fix the spec and "
                               "deploy again (the others were added)"
                               % (len(self.refused), job_id, shown, _more(self.refused)))


def _more(items: Sequence[Any]) -> str:
    return " and %d more" % (len(items) - 5) if len(items) > 5 else ""


class TaskAdder:
    """Adds tasks to one job through ``batch`` (an ``azure.batch.BatchClient``)."""

    def __init__(self, batch: Any, job_id: str, where: Optional[Where] = None,
                 progress: Optional[Callable[[int], None]] = None,
                 concurrency: int = CONCURRENCY, rounds: int = ROUNDS,
                 backoff: float = BACKOFF, sleep: Callable[[float], None] = time.sleep) -> None:
        self.batch, self.job_id, self.where = batch, job_id, where
        self.progress = progress or (lambda n: None)
        self.concurrency, self.rounds, self.backoff, self.sleep = (
            concurrency, rounds, backoff, sleep)
        self._lock = threading.Lock()
        self._report = AddReport()

    # -- what is there -------------------------------------------------------------------

    def ids(self) -> set:
        """The lower-cased ids of the job's tasks (one request per 1,000)."""
        try:
            return {t["id"].lower() for t in list_tasks(self.batch, self.job_id, ["id"])}
        except Exception as e:  # the SDK's errors, translated at this boundary
            raise translate(e, "listing the tasks of job %s" % self.job_id, self.where) from None

    def _scan(self, tasks: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Compare the job's tasks with ours as their pages arrive (one request per 1,000;
        nothing kept but the verdicts); the tasks still to add."""
        ours = {t["id"].lower(): t for t in tasks}
        seen = set()
        try:
            for there in list_tasks(self.batch, self.job_id, DEFINITION_FIELDS):
                task = ours.get(there["id"].lower())
                if task is not None:
                    seen.add(there["id"].lower())
                    self._judge(task, there)
        except Exception as e:  # the SDK's errors, translated at this boundary
            raise translate(e, "listing the tasks of job %s" % self.job_id, self.where) from None
        return [t for t in tasks if t["id"].lower() not in seen]

    # -- adding --------------------------------------------------------------------------

    def add(self, tasks: Sequence[Dict[str, Any]], scan: bool = True) -> AddReport:
        """Add the tasks the job does not have yet; ``scan=False`` when the job was just
        created (so has none: no listing)."""
        report = self._report = AddReport()
        pending = self._scan(tasks) if scan else list(tasks)
        self.progress(report.present)
        by_id = {t["id"].lower(): t for t in pending}
        delay = self.backoff
        for round_number in range(self.rounds):
            if not pending:
                break
            if round_number:
                self.sleep(min(delay, 30.0))
                delay *= 2
            pending = self._round(pending, by_id)
        if pending:
            raise CloudTransient(
                "%d task(s) of job %s were not added after %d tries (server errors): run "
                "deploy again; it adds only what is missing" % (len(pending), self.job_id,
                                                                self.rounds))
        return report

    def _round(self, tasks: List[Dict[str, Any]], by_id: Dict[str, Dict[str, Any]]
               ) -> List[Dict[str, Any]]:
        """Send every collection once; the tasks to send again."""
        batches = collections(tasks)
        workers = max(1, min(self.concurrency, len(batches)))
        with ThreadPoolExecutor(workers, thread_name_prefix="add-tasks") as pool:
            outcomes = list(pool.map(self._send, batches))
        again: List[Dict[str, Any]] = []
        for retry, present in outcomes:
            again.extend(retry)
            for task_id in present:  # TaskExists: ours (a lost answer) or someone else's
                self._judge(by_id[task_id.lower()], self._read(task_id))
            self.progress(len(present))
        return again

    def _send(self, batch: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[str]]:
        """One request; (tasks to send again, ids that exist already)."""
        from azure.core.exceptions import (
            DecodeError,
            HttpResponseError,
            IncompleteReadError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            answer = self.batch.create_task_collection(self.job_id, {"value": batch})
        except (ServiceRequestError, ServiceResponseError, IncompleteReadError, DecodeError):
            return list(batch), []  # it may have been applied: TaskExists will tell
        except HttpResponseError as e:
            code = service_words(e)[0]
            if code == "RequestBodyTooLarge" and len(batch) > 1:
                half = len(batch) // 2
                first, second = self._send(batch[:half]), self._send(batch[half:])
                return first[0] + second[0], first[1] + second[1]
            if e.status_code and (e.status_code >= 500 or e.status_code == 429):
                return list(batch), []
            raise translate(e, "adding tasks to job %s" % self.job_id, self.where,
                            not_found="job %s does not exist (any more)" % self.job_id
                            ) from None
        return self._outcomes(batch, answer)

    def _outcomes(self, batch: List[Dict[str, Any]], answer: Any
                  ) -> Tuple[List[Dict[str, Any]], List[str]]:
        sent = {t["id"].lower(): t for t in batch}
        retry, present, added, refused = [], [], 0, []
        for result in answer.result_values or []:
            task = sent.pop(str(result.task_id).lower(), None)
            if task is None:
                continue
            status = str(getattr(result.status, "value", result.status)).lower()
            code = getattr(result.error, "code", None) or ""
            if status == "success":
                added += 1
            elif status == "servererror":
                retry.append(task)
            elif code == "TaskExists":
                present.append(task["id"])
            else:
                message = getattr(getattr(result.error, "message", None), "value", None) or ""
                first = message.strip().splitlines()
                refused.append((task["id"], code or "?", first[0] if first else ""))
        retry.extend(sent.values())  # no answer for them: send again
        with self._lock:
            self._report.added += added
            self._report.refused.extend(refused)
        self.progress(added + len(refused))
        return retry, present

    def _read(self, task_id: str) -> Dict[str, Any]:
        try:
            return self.batch.get_task(self.job_id, task_id, select=DEFINITION_FIELDS).as_dict()
        except Exception as e:  # the SDK's errors, translated at this boundary
            raise translate(e, "reading task %s of job %s" % (task_id, self.job_id),
                            self.where) from None

    def _judge(self, task: Dict[str, Any], there: Dict[str, Any]) -> None:
        keys = differences(task, there)
        with self._lock:
            if keys:
                self._report.conflicts.append((task["id"], keys))
            else:
                self._report.present += 1


# -- comparing definitions ---------------------------------------------------------------


def differences(ours: Dict[str, Any], theirs: Dict[str, Any]) -> List[str]:
    """The definition fields in which two tasks differ (Batch's defaults filled in; a field
    the service does not echo is not compared)."""
    a, b = definition(ours), definition(theirs)
    return [key for key in a if b.get(key) is not None and a[key] != b[key]]


def definition(task: Dict[str, Any]) -> Dict[str, Any]:
    """A task's definition in a form two equal tasks share."""
    constraints = task.get("constraints") or {}
    wall = constraints.get("maxWallClockTime")
    seconds = seconds_of(wall) if wall else None
    return {
        "id": str(task.get("id", "")).lower(),
        "commandLine": task.get("commandLine"),
        "displayName": task.get("displayName") if "displayName" in task else None,
        "environmentSettings": sorted((s.get("name"), s.get("value") or "")
                                      for s in task.get("environmentSettings") or []),
        "requiredSlots": task.get("requiredSlots") or 1,
        "maxTaskRetryCount": constraints.get("maxTaskRetryCount") or 0,
        "maxWallClockTime": None if seconds is None or seconds >= UNLIMITED else seconds,
        "dependsOn": _depends(task.get("dependsOn")),
        "exitConditions": _lowered(task["exitConditions"]) if task.get("exitConditions")
        else None,
    }


def _depends(depends: Optional[Dict[str, Any]]) -> Any:
    depends = depends or {}
    ranges = sorted((int(r["start"]), int(r["end"])) for r in depends.get("taskIdRanges") or [])
    return [sorted(str(t).lower() for t in depends.get("taskIds") or []), ranges]


def _lowered(value: Any) -> Any:
    if isinstance(value, Mapping):  # a dict, or an SDK model (a MutableMapping of its JSON)
        return {k: _lowered(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, list):
        return [_lowered(v) for v in value]
    return value.lower() if isinstance(value, str) else value


_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"
                       r"(?:(\d+(?:\.\d+)?)S)?)?$")


def seconds_of(duration: Any) -> Optional[float]:
    """An ISO 8601 duration (``PT11M30S``, ``P10675199DT2H48M5.4775807S``) or a
    ``timedelta`` in seconds; None when it is neither."""
    if hasattr(duration, "total_seconds"):
        return float(duration.total_seconds())
    match = _DURATION.match(str(duration).strip().upper())
    if not match:
        return None
    days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    return round(days * 86400 + hours * 3600 + minutes * 60 + secs, 3)
