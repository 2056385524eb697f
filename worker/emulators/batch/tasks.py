"""Tasks: add, add a collection (a result per task), list (``$filter``, ``$select``), get,
update, delete, terminate, reactivate, subtasks; and how a task is answered: Batch's
``active``, ``running`` and ``completed`` states with its ``executionInfo`` (retries,
requeues, exit code, result, failure) and ``nodeInfo``.

At-least-once, as on Azure: a task whose node is lost runs again from the start elsewhere
(``requeueCount``); a failure is retried up to ``maxTaskRetryCount`` (the task's, else the
job's); reactivating a failed task makes it eligible for its retries again.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ...deploy.errors import DeployError
from ...deploy.localbatch.documents import PackageRef, Task, task_from_json
from ...deploy.localbatch.scheduler import COMPLETED, TaskRun
from . import schema
from .errors import BatchError, property_error
from .jobs import FINISHED, JobRecord, TaskDoc
from .wire import RETENTION, UNLIMITED, etag, iso

if TYPE_CHECKING:
    from .app import Call
    from .service import BatchService

MAX_COLLECTION = 100
MAX_COLLECTION_BYTES = 1000000
MAX_DEPENDENCY_CHARS = 64000
_FAILURES = {  # outcome -> Batch's failureInfo (code, message)
    "exit": ("FailureExitCode", "The task exited with an exit code representing a failure"),
    "timeout": ("TaskEnded", "The task exceeded its maxWallClockTime and was terminated"),
    "terminated": ("TaskEnded", "Task Was Ended by User Request"),
    "start_error": ("CommandProgramNotFound", "The task could not be started"),
}


def state_of(run: TaskRun) -> str:
    return api_state(run.state)


def api_state(state: str) -> str:
    """Batch's task state of the scheduler's: a blocked task stays ``active``, as on Azure."""
    if state == "running":
        return "running"
    return "completed" if state in COMPLETED else "active"


def to_json(service: "BatchService", job: JobRecord, run: TaskRun) -> Dict[str, Any]:
    """The task as Batch answers it (never changed by the caller: it may be reused until
    the task's next change)."""
    doc = job.docs[run.task.id.lower()]
    if doc.answer is not None and doc.answer[0] == run.version:
        return doc.answer[1]
    document = _render(service, job, run, doc)
    doc.answer = (run.version, document)
    return document


def _render(service: "BatchService", job: JobRecord, run: TaskRun, doc: Any) -> Dict[str, Any]:
    body = doc.body
    url = "%s/jobs/%s/tasks/%s" % (service.url, job.id, run.task.id)
    constraints = dict(body.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNLIMITED)
    constraints.setdefault("retentionTime", RETENTION)
    constraints["maxTaskRetryCount"] = run.task.max_retries
    document: Dict[str, Any] = {
        "id": run.task.id, "url": url, "eTag": etag(run.version, doc.created),
        "creationTime": iso(doc.created), "lastModified": iso(run.changed_at),
        "state": state_of(run), "stateTransitionTime": iso(run.changed_at),
        "commandLine": body["commandLine"], "requiredSlots": run.task.required_slots,
        "constraints": constraints,
        "userIdentity": body.get("userIdentity") or {
            "autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
    }
    for key in ("displayName", "exitConditions", "environmentSettings", "affinityInfo",
                "dependsOn", "applicationPackageReferences", "authenticationTokenSettings"):
        if body.get(key) is not None:
            document[key] = body[key]
    if run.previous_state is not None:
        previous = api_state(run.previous_state)
        if previous != document["state"]:
            document["previousState"] = previous
            document["previousStateTransitionTime"] = iso(run.previous_changed_at)
    document["executionInfo"] = _execution(run)
    if run.host is not None:
        document["nodeInfo"] = _node_info(service, job, run)
    return {k: v for k, v in document.items() if v is not None}


def _execution(run: TaskRun) -> Dict[str, Any]:
    info: Dict[str, Any] = {"retryCount": run.retries, "requeueCount": run.requeues}
    if run.started_at is not None and run.state != "pending":
        info["startTime"] = iso(run.started_at)
    if run.retried_at:
        info["lastRetryTime"] = iso(run.retried_at)
    if run.requeued_at:
        info["lastRequeueTime"] = iso(run.requeued_at)
    if run.state in COMPLETED:
        info["endTime"] = iso(run.ended_at)
        if run.exit_code is not None:
            info["exitCode"] = run.exit_code
        info["result"] = "success" if run.state == "succeeded" else "failure"
        if run.state != "succeeded":
            code, message = _FAILURES.get(run.outcome or "exit", _FAILURES["exit"])
            detail = run.failure or message
            info["failureInfo"] = {"category": "usererror", "code": code, "message": message,
                                   "details": [{"name": "Message", "value": detail}]}
    return info


def _node_info(service: "BatchService", job: JobRecord, run: TaskRun) -> Dict[str, Any]:
    assert run.host is not None
    pool_id = job.pool_id
    node_url = "%s/pools/%s/nodes/%s" % (service.url, pool_id, run.host.name)
    folder = "workitems/%s/job-1/%s" % (job.id, run.task.id)
    return {"affinityId": "TVM:%s" % run.host.name, "nodeUrl": node_url, "poolId": pool_id,
            "nodeId": run.host.name, "taskRootDirectory": folder,
            "taskRootDirectoryUrl": "%s/files/%s" % (node_url, folder)}


# -- adding ------------------------------------------------------------------------------------

def add(service: "BatchService", call: "Call") -> Any:
    job = service.job(call.params["jobId"])
    body = call.body(schema.TASK)
    run = _add_one(service, job, body)
    return call.created("%s/jobs/%s/tasks/%s" % (service.url, job.id, run.task.id),
                        _Versioned(run, job))


def add_collection(service: "BatchService", call: "Call") -> Any:
    job = service.job(call.params["jobId"])
    if len(call.raw_body) > MAX_COLLECTION_BYTES:
        raise BatchError("RequestBodyTooLarge", values=[("MaxLimit", str(MAX_COLLECTION_BYTES))])
    body = call.body(schema.TASK_COLLECTION)
    if len(body["value"]) > MAX_COLLECTION:
        raise property_error("InvalidPropertyValue", "value", None,
                             "at most %d tasks, got %d" % (MAX_COLLECTION, len(body["value"])))
    results = [_result(service, job, item, call) for item in body["value"]]
    return call.document(200, {"value": results})


def _result(service: "BatchService", job: JobRecord, item: Dict[str, Any],
            call: "Call") -> Dict[str, Any]:
    """One task's result: added, or Batch's error for it (a fault rule's ``item`` answer
    stands for the service failing that task alone)."""
    try:
        fault = call.item_fault()
        if fault is not None:
            raise BatchError(fault.code, status=fault.status)
        run = _add_one(service, job, item)
    except BatchError as e:
        return {"status": "clienterror" if e.status < 500 else "servererror",
                "taskId": item.get("id"), "error": json.loads(e.body(service.url,
                                                                     call.request_id))}
    doc = job.docs[run.task.id.lower()]
    return {"status": "success", "taskId": run.task.id,
            "eTag": etag(run.version, doc.created), "lastModified": iso(run.changed_at),
            "location": "%s/jobs/%s/tasks/%s" % (service.url, job.id, run.task.id)}


def _add_one(service: "BatchService", job: JobRecord, body: Dict[str, Any]) -> TaskRun:
    state = job.api_state()
    if state in FINISHED:
        raise BatchError({"completed": "JobCompleted", "terminating": "JobBeingTerminated",
                          "deleting": "JobBeingDeleted"}[state])
    if body["id"].lower() in job.run.by_id:
        raise BatchError("TaskExists")
    task = build_task(body, job)
    service.apps.check_refs(body.get("applicationPackageReferences"))
    job.docs[task.id.lower()] = TaskDoc(copy.deepcopy(body))
    run = job.run.add(task)
    service.wake()
    return run


def build_task(body: Dict[str, Any], job: JobRecord) -> Task:
    """The scheduler's task from a checked body; what Batch refuses about it."""
    depends = body.get("dependsOn") or {}
    if depends and not job.spec.get("usesTaskDependencies"):
        raise BatchError("TaskDependenciesNotSpecifiedOnJob", status=400)
    if sum(len(t) for t in depends.get("taskIds") or []) > MAX_DEPENDENCY_CHARS:
        raise BatchError("TaskDependencyListTooLong", status=400)
    try:
        task, _ = task_from_json(body, "task %s" % body["id"])
    except DeployError as e:
        raise property_error("InvalidPropertyValue", "commandLine", body.get("commandLine"),
                             str(e).split(": ", 1)[-1]) from None
    constraints = body.get("constraints") or {}
    retries = constraints.get("maxTaskRetryCount", job.max_retries)
    ranges: List[Tuple[int, int]] = [(int(r["start"]), int(r["end"]))
                                     for r in depends.get("taskIdRanges") or []]
    return replace(task, max_retries=int(retries), depends_on=list(depends.get("taskIds") or []),
                   depends_ranges=ranges,
                   packages=[PackageRef(r["applicationId"], r.get("version"))
                             for r in body.get("applicationPackageReferences") or []])


class _Versioned:
    """A task as ``Call.created`` wants a resource: an eTag and a time."""

    def __init__(self, run: TaskRun, job: JobRecord) -> None:
        self.etag = etag(run.version, job.docs[run.task.id.lower()].created)
        self.changed = run.changed_at


# -- reading and changing ----------------------------------------------------------------------

def list_tasks(service: "BatchService", call: "Call") -> Any:
    job = service.job(call.params["jobId"])
    return call.listing(job.run.runs, "tasks", render=lambda r: to_json(service, job, r),
                        key=lambda r: r.task.id.lower())


def get(service: "BatchService", call: "Call") -> Any:
    job, run = service.task(call.params["jobId"], call.params["taskId"])
    document = to_json(service, job, run)
    call.check_conditions(document["eTag"], run.changed_at)
    return call.resource(document, _Versioned(run, job), "tasks/@Element")


def update(service: "BatchService", call: "Call") -> Any:
    job, run = service.task(call.params["jobId"], call.params["taskId"])
    body = call.body(schema.TASK_UPDATE)
    if state_of(run) == "completed":
        raise BatchError("TaskCompleted")
    doc = job.docs[run.task.id.lower()]
    constraints = body.get("constraints") or {}
    doc.body["constraints"] = copy.deepcopy(constraints)
    doc.answer = None
    updated = build_task(doc.body, job)
    run.task = replace(run.task, max_retries=updated.max_retries,
                       max_wall_clock=updated.max_wall_clock,
                       max_wall_clock_text=updated.max_wall_clock_text)
    run.version += 1
    return call.empty(200, _Versioned(run, job))


def delete(service: "BatchService", call: "Call") -> Any:
    job, run = service.task(call.params["jobId"], call.params["taskId"])
    call.check_conditions(etag(run.version, job.docs[run.task.id.lower()].created),
                          run.changed_at)
    service.scheduler_of(job).delete_task(job.run, run)
    job.docs.pop(run.task.id.lower(), None)
    job.complete_upto = 0
    job.touch()
    return call.empty(200)


def terminate(service: "BatchService", call: "Call") -> Any:
    job, run = service.task(call.params["jobId"], call.params["taskId"])
    if state_of(run) == "completed":
        raise BatchError("TaskCompleted")
    service.scheduler_of(job).terminate_task(run)
    return call.empty(204, _Versioned(run, job))


def reactivate(service: "BatchService", call: "Call") -> Any:
    job, run = service.task(call.params["jobId"], call.params["taskId"])
    state = job.api_state()
    if state in FINISHED:
        raise BatchError({"completed": "JobCompleted", "terminating": "JobBeingTerminated",
                          "deleting": "JobBeingDeleted"}[state])
    if state_of(run) != "completed":
        raise BatchError("TaskNotCompleted")
    if run.state == "succeeded":
        raise BatchError("TaskSucceeded")
    service.scheduler_of(job).reactivate(job.run, run)
    job.complete_upto = 0
    return call.empty(204, _Versioned(run, job))


def subtasks(service: "BatchService", call: "Call") -> Any:
    service.task(call.params["jobId"], call.params["taskId"])
    return call.document(200, {"value": []})


def find(job: JobRecord, task_id: str) -> Optional[TaskRun]:
    return job.run.by_id.get(task_id.lower())
