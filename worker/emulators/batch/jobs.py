"""Jobs: the operations on them (add, get, list, patch, replace, delete, disable, enable,
terminate, task counts) and their life: ``active``; ``disabling`` then ``disabled`` (its
running tasks requeued, ended, or left to finish); ``terminating`` then ``completed`` (by a
user, by ``onAllTasksComplete: terminatejob`` once its tasks have completed, by a task's
exit condition, or past the job's ``maxWallClockTime``); ``deleting``.

``onAllTasksComplete`` is looked at when one of the job's tasks completes and when the
property is set: Batch's documentation says a job with no tasks counts as complete, so a
job created with ``terminatejob`` whose tasks are added next would otherwise end at once.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from ...deploy.localbatch.documents import Job
from ...deploy.localbatch.scheduler import COMPLETED, JobRun
from . import schema
from .errors import BatchError, property_error
from .wire import UNLIMITED, duration_seconds, etag, iso

if TYPE_CHECKING:
    from .app import Call
    from .service import BatchService

FINISHED = ("completed", "terminating", "deleting")


class TaskDoc:
    """What a task was added with, and when; and its last answer, with the task's version
    it was made for (a listing of 10,000 tasks renders only those that changed)."""

    __slots__ = ("body", "created", "answer")

    def __init__(self, body: Dict[str, Any]) -> None:
        self.body = body
        self.created = time.time()
        self.answer: Optional[Tuple[int, Dict[str, Any]]] = None


class JobRecord:
    """A job: its specification, its tasks on the scheduler (``run``) and its history."""

    def __init__(self, service: "BatchService", spec: Dict[str, Any]) -> None:
        self.service = service
        self.id: str = spec["id"]
        self.spec = spec
        self.created = self.changed = self.state_changed = time.time()
        self.previous: Optional[str] = None
        self.previous_changed: Optional[float] = None
        self.version = 0
        self.deleting = False
        self.disabling_how = "requeue"
        self.ended: Optional[float] = None
        self.seen_state = "active"
        self.seen_completions = 0
        self.run = JobRun(self.engine_job())
        self.docs: Dict[str, TaskDoc] = {}
        self.complete_upto = 0  # the tasks before it are known to be completed

    @property
    def pool_id(self) -> str:
        return str((self.spec.get("poolInfo") or {}).get("poolId") or "")

    def engine_job(self) -> Job:
        environment = {s["name"]: str(s.get("value") or "")
                       for s in self.spec.get("commonEnvironmentSettings") or []}
        return Job(id=self.id, pool_id=self.pool_id, environment=environment,
                   uses_dependencies=bool(self.spec.get("usesTaskDependencies")),
                   on_task_failure=str(self.spec.get("onTaskFailure", "noaction")).lower(),
                   priority=int(self.spec.get("priority") or 0),
                   max_parallel_tasks=int(self.spec.get("maxParallelTasks", -1)))

    def touch(self) -> None:
        self.changed = time.time()
        self.version += 1

    @property
    def etag(self) -> str:
        return etag(self.version, self.created)

    @property
    def max_retries(self) -> int:
        return int((self.spec.get("constraints") or {}).get("maxTaskRetryCount") or 0)

    def api_state(self) -> str:
        if self.deleting:
            return "deleting"
        if self.run.state == "disabled":
            return "disabling" if self._busy() else "disabled"
        if self.run.state == "terminated":
            return "terminating" if self._busy() else "completed"
        return "active"

    def _busy(self) -> bool:
        """A task of the job runs: looked for on the nodes' slots, not among its tasks."""
        hosts = self.service.scheduler_of(self).hosts
        return any(self.run.by_id.get(r.task.id.lower()) is r
                   for host in hosts for r in host.running)

    def tick(self, now: float) -> None:
        """Terminate by onAllTasksComplete or maxWallClockTime; note state changes."""
        run = self.run
        if run.state == "active":
            if run.completions != self.seen_completions:
                self.seen_completions = run.completions
                self.check_all_complete()
            limit = (self.spec.get("constraints") or {}).get("maxWallClockTime")
            seconds = duration_seconds(limit) if limit else None
            if seconds is not None and time.time() - self.created >= seconds:
                self.service.scheduler_of(self).terminate_job(
                    run, "terminated: past its maxWallClockTime", "MaxWallClockTimeExpiry")
        self.note_state()

    def check_all_complete(self) -> None:
        if str(self.spec.get("onAllTasksComplete", "noaction")).lower() != "terminatejob":
            return
        if self.run.state == "active" and self.run.runs and self._all_completed():
            self.service.scheduler_of(self).terminate_job(
                self.run, "terminated: all its tasks completed", "AllTasksComplete")

    def _all_completed(self) -> bool:
        """Whether every task has completed, looking past those known to be (tasks are
        added at the end; a reactivation or deletion starts the count again)."""
        runs = self.run.runs
        index = min(self.complete_upto, len(runs))
        while index < len(runs) and runs[index].state in COMPLETED:
            index += 1
        self.complete_upto = index
        return index == len(runs)

    def note_state(self) -> None:
        state = self.api_state()
        if state != self.seen_state:
            self.previous, self.previous_changed = self.seen_state, self.state_changed
            self.seen_state, self.state_changed = state, time.time()
            if state == "completed":
                self.ended = self.state_changed
            self.touch()

    def to_json(self) -> Dict[str, Any]:
        url = "%s/jobs/%s" % (self.service.url, self.id)
        spec = self.spec
        constraints = dict(spec.get("constraints") or {})
        constraints.setdefault("maxWallClockTime", UNLIMITED)
        constraints.setdefault("maxTaskRetryCount", 0)
        document: Dict[str, Any] = {
            "id": self.id, "url": url, "eTag": self.etag, "lastModified": iso(self.changed),
            "creationTime": iso(self.created), "state": self.api_state(),
            "stateTransitionTime": iso(self.state_changed),
            "priority": int(spec.get("priority") or 0),
            "maxParallelTasks": int(spec.get("maxParallelTasks", -1)),
            "allowTaskPreemption": bool(spec.get("allowTaskPreemption", False)),
            "usesTaskDependencies": bool(spec.get("usesTaskDependencies", False)),
            "constraints": constraints, "poolInfo": spec.get("poolInfo"),
            "onAllTasksComplete": spec.get("onAllTasksComplete", "noaction"),
            "onTaskFailure": spec.get("onTaskFailure", "noaction")}
        for key in ("displayName", "commonEnvironmentSettings", "metadata",
                    "networkConfiguration"):
            if spec.get(key) is not None:
                document[key] = spec[key]
        if self.previous is not None:
            document["previousState"] = self.previous
            document["previousStateTransitionTime"] = iso(self.previous_changed)
        info: Dict[str, Any] = {"startTime": iso(self.created), "poolId": self.pool_id}
        if self.ended is not None:
            info["endTime"] = iso(self.ended)
        if self.run.reason and self.run.state == "terminated":
            info["terminateReason"] = self.run.reason
        document["executionInfo"] = info
        return document


# -- the operations ----------------------------------------------------------------------------

def add(service: "BatchService", call: "Call") -> Any:
    body = call.body(schema.JOB)
    if not (body["poolInfo"] or {}).get("poolId"):
        raise property_error("MissingRequiredProperty", "poolInfo.poolId")
    if body["id"].lower() in service.jobs:
        raise BatchError("JobExists")
    job = JobRecord(service, copy.deepcopy(body))
    service.jobs[job.id.lower()] = job
    service.attach_job(job)
    return call.created("%s/jobs/%s" % (service.url, job.id), job)


def get(service: "BatchService", call: "Call") -> Any:
    job = call.conditional(service.job(call.params["jobId"]))
    return call.resource(job.to_json(), job, "jobs/@Element")


def list_jobs(service: "BatchService", call: "Call") -> Any:
    return call.listing(list(service.jobs.values()), "jobs", render=JobRecord.to_json,
                        key=lambda j: j.id.lower())


def patch(service: "BatchService", call: "Call") -> Any:
    job = call.conditional(service.job(call.params["jobId"]))
    _update(service, job, call.body(schema.JOB_PATCH), replace=False)
    return call.empty(200, job)


def replace(service: "BatchService", call: "Call") -> Any:
    job = call.conditional(service.job(call.params["jobId"]))
    _update(service, job, call.body(schema.JOB_REPLACE), replace=True)
    return call.empty(200, job)


def _update(service: "BatchService", job: JobRecord, body: Dict[str, Any],
            replace: bool) -> None:
    _not_finished(job)
    pool = (body.get("poolInfo") or {}).get("poolId")
    if body.get("poolInfo") is not None and not pool:
        raise property_error("MissingRequiredProperty", "poolInfo.poolId")
    moved = bool(pool) and pool.lower() != job.pool_id.lower()
    if moved and job.run.state != "disabled":
        raise property_error("InvalidPropertyValue", "poolInfo.poolId", pool,
                             "a job's pool can change only while the job is disabled")
    before = str(job.spec.get("onAllTasksComplete", "noaction")).lower()
    after = str(body.get("onAllTasksComplete", before if not replace else "noaction")).lower()
    if before == "terminatejob" and after == "noaction":
        raise property_error("InvalidPropertyValue", "onAllTasksComplete", after,
                             "it cannot change from terminatejob back to noaction")
    if replace:
        for key in ("priority", "maxParallelTasks", "allowTaskPreemption", "constraints",
                    "metadata", "onAllTasksComplete"):
            job.spec.pop(key, None)
    for key, value in body.items():
        if value is not None:
            job.spec[key] = copy.deepcopy(value)
    if moved:  # only a job that moves leaves its scheduler (its running tasks requeued)
        service.detach_job(job)
    job.run.job = job.engine_job()
    if moved:
        service.attach_job(job)
    job.touch()
    if after == "terminatejob" and before != after:
        job.check_all_complete()
    service.wake()


def delete(service: "BatchService", call: "Call") -> Any:
    job = call.conditional(service.job(call.params["jobId"]))
    service.delete_job(job)
    return call.empty(202)


def disable(service: "BatchService", call: "Call") -> Any:
    job = call.conditional(service.job(call.params["jobId"]))
    body = call.body(schema.JOB_DISABLE)
    _not_finished(job)
    if job.run.state != "active":
        raise BatchError("JobNotActive")
    how = body["disableTasks"].lower()
    service.scheduler_of(job).disable_job(job.run, how, "disabled by a user (%s)" % how)
    job.note_state()
    return call.empty(202, job)


def enable(service: "BatchService", call: "Call") -> Any:
    job = call.conditional(service.job(call.params["jobId"]))
    _not_finished(job)
    if job.run.state != "disabled":
        raise BatchError("OperationInvalidForCurrentState", "The specified job is not "
                                                            "disabled.")
    service.scheduler_of(job).enable_job(job.run)
    job.note_state()
    return call.empty(202, job)


def terminate(service: "BatchService", call: "Call") -> Any:
    job = call.conditional(service.job(call.params["jobId"]))
    body = call.body(schema.JOB_TERMINATE, optional=True)
    _not_finished(job)
    reason = body.get("terminateReason") or "UserTerminate"
    service.scheduler_of(job).terminate_job(job.run, "terminated by a user (%s)" % reason,
                                            reason)
    job.note_state()
    return call.empty(202, job)


def task_counts(service: "BatchService", call: "Call") -> Any:
    job = service.job(call.params["jobId"])
    counts = dict.fromkeys(("active", "running", "completed", "succeeded", "failed"), 0)
    slots = dict(counts)
    for run in job.run.runs:
        state = "running" if run.state == "running" else \
            "completed" if run.state in COMPLETED else "active"
        for name in (state, "succeeded" if run.state == "succeeded" else
                     "failed" if state == "completed" else None):
            if name:
                counts[name] += 1
                slots[name] += run.task.required_slots
    return call.document(200, {"taskCounts": counts, "taskSlotCounts": slots})


def _not_finished(job: JobRecord) -> None:
    state = job.api_state()
    if state in FINISHED:
        raise BatchError({"completed": "JobCompleted", "terminating": "JobBeingTerminated",
                          "deleting": "JobBeingDeleted"}[state])
