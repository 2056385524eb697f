"""Pools: the operations on them (add, get, exists, list, patch, update properties, delete,
resize, stop resize, enable/disable/evaluate autoscale, remove nodes) and what a pool does on
its own between requests: reach its target node counts, preempt spot nodes at the
``--preempt-rate``, bring preempted nodes back, evaluate its autoscale formula.

A pool's nodes run its jobs' tasks through one scheduler (``worker.deploy.localbatch``'s),
which fills them by the pool's ``taskSchedulingPolicy`` (``spread`` by default, or
``pack``) up to ``taskSlotsPerNode`` slots each.
"""

from __future__ import annotations

import copy
import math
import os
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ...deploy.errors import SpecError
from ...deploy.localbatch.documents import PackageRef, StartTask, split_command
from ...deploy.localbatch.scheduler import Host, JobRun, Scheduler, StartError, TaskRun
from . import schema
from .errors import BatchError, property_error
from .nodes import SimNode
from .scaling import AutoScaler, formula_error
from .wire import etag, iso

if TYPE_CHECKING:
    from .app import Call
    from .service import BatchService

DEFAULT_INTERVAL = 15 * 60.0  # autoScaleEvaluationInterval when none is given
MIN_INTERVAL, MAX_INTERVAL = 5 * 60.0, 168 * 3600.0
RESIZE_TIMEOUT = "PT15M"


class Pool:
    """A pool: its specification as given, its nodes, its scheduler, its scaling."""

    def __init__(self, service: "BatchService", spec: Dict[str, Any]) -> None:
        self.service = service
        self.id: str = spec["id"]
        self.spec = spec
        self.created = self.changed = self.alloc_changed = time.time()
        self.state = "active"
        self.version = 0
        self.nodes: Dict[str, SimNode] = {}
        self.target_dedicated = int(spec.get("targetDedicatedNodes") or 0)
        self.target_low = int(spec.get("targetLowPriorityNodes") or 0)
        self.deallocation = "requeue"
        self.resize_timeout = spec.get("resizeTimeout") or RESIZE_TIMEOUT
        self.stopping = False
        self.notes: List[str] = []
        self.scaler: Optional[AutoScaler] = None
        self.last_tick = service.clock.now()
        fill = (spec.get("taskSchedulingPolicy") or {}).get("nodeFillType", "spread")
        self.scheduler = Scheduler(self._prepare, fill=fill, kill_after=service.settings.kill_after,
                                   wakeup=service.wakeup)
        self.start_task: Optional[StartTask] = None
        self.package_refs: List[PackageRef] = []
        self._adopt(spec)

    def _adopt(self, spec: Dict[str, Any]) -> None:
        """The start task and packages new nodes get (existing nodes at their next boot)."""
        self.start_task = start_task(spec.get("startTask"))
        self.package_refs = [PackageRef(r["applicationId"], r.get("version"))
                             for r in spec.get("applicationPackageReferences") or []]

    @property
    def slots(self) -> int:
        return int(self.spec.get("taskSlotsPerNode") or 1)

    def touch(self) -> None:
        self.changed = time.time()
        self.version += 1

    def image(self) -> Dict[str, Any]:
        vm = self.spec.get("virtualMachineConfiguration") or {}
        return dict(vm.get("imageReference") or {})

    # -- nodes ------------------------------------------------------------------------------------

    def counts(self) -> Tuple[int, int]:
        """Current dedicated and spot nodes (those leaving still count until gone)."""
        dedicated = sum(1 for n in self.nodes.values() if n.dedicated)
        return dedicated, len(self.nodes) - dedicated

    def allocation_state(self) -> str:
        """``resizing`` while nodes are being allocated or leave, or the counts differ from
        the targets; ``stopping`` after a stop-resize until that is over."""
        busy = any(n.state == "creating" or n.leaving for n in self.nodes.values())
        if self.stopping:
            return "stopping" if busy else "steady"
        staying = [n for n in self.nodes.values() if not n.leaving]
        dedicated = sum(1 for n in staying if n.dedicated)
        if (dedicated, len(staying) - dedicated) != (self.target_dedicated, self.target_low):
            busy = True
        return "resizing" if busy else "steady"

    def set_targets(self, dedicated: int, low: int, option: Optional[str] = None) -> None:
        if (dedicated, low) != (self.target_dedicated, self.target_low):
            self.alloc_changed = time.time()
        self.target_dedicated, self.target_low = dedicated, low
        self.deallocation = (option or "requeue").lower()
        self.stopping = False
        self.touch()
        self.service.wake()

    def tick(self, now: float) -> float:
        """What the pool does on its own; the service seconds until it needs another look."""
        due = math.inf
        if self.state != "active":
            return due
        if self.scaler is not None:
            due = min(due, self.scaler.tick(self, now))
        self._preempt_some(now)
        self._converge(now)
        for node in list(self.nodes.values()):
            if node.leaving is not None and node.gone_yet():
                del self.nodes[node.id]
            elif node.state == "creating":
                if node.allocate_at <= now:
                    node.boot()
                else:
                    due = min(due, node.allocate_at - now)
            elif node.state == "preempted" and node.recover_at is not None:
                if node.recover_at <= now:
                    node.recover()
                else:
                    due = min(due, node.recover_at - now)
        rate = self.service.settings.preempt_rate
        if rate > 0 and any(not n.dedicated for n in self.nodes.values()):
            due = min(due, 60.0)  # draw again within a minute of service time
        self.last_tick = now
        return due

    def _converge(self, now: float) -> None:
        if self.stopping:
            return
        for dedicated, target in ((True, self.target_dedicated), (False, self.target_low)):
            staying = [n for n in self.nodes.values()
                       if n.dedicated == dedicated and n.leaving is None]
            for _ in range(target - len(staying)):
                self._add_node(dedicated, now)
            for node in sorted(staying, key=_removal_order)[:max(0, len(staying) - target)]:
                if node.remove(self.deallocation):
                    del self.nodes[node.id]

    def _add_node(self, dedicated: bool, now: float) -> SimNode:
        node_id = "tvmps_%s_%s" % (uuid.uuid4().hex[:24], "d" if dedicated else "p")
        node = SimNode(self, node_id, dedicated, now + self.service.settings.node_start)
        self.nodes[node_id] = node
        self.alloc_changed = time.time()
        return node

    def _preempt_some(self, now: float) -> None:
        rate = self.service.settings.preempt_rate
        hours = max(0.0, now - self.last_tick) / 3600.0
        if rate <= 0 or hours <= 0:
            return
        chance = 1.0 - math.exp(-rate * hours)
        for node in list(self.nodes.values()):
            if not node.dedicated and node.leaving is None and \
                    node.state not in ("creating", "preempted") and \
                    self.service.random.random() < chance:
                node.preempt()

    def remove_all(self) -> None:
        for node in list(self.nodes.values()):
            node.remove("requeue")
        self.nodes.clear()

    # -- tasks on the nodes -----------------------------------------------------------------------

    def _prepare(self, job: JobRun, run: TaskRun, host: Host):
        node = self.nodes[host.name]
        assert node.local is not None
        record = self.service.jobs[job.job.id.lower()]
        layers: List[Dict[str, str]] = [self._task_packages(node, run),
                                        job.job.environment, run.task.environment]
        env = node.local.task_environment(os.environ, job.job.id, run.task.id, layers)
        node.tasks_run += 1
        node.recent.append((record.id, run.task.id))
        node.version += 1
        return node.local.task_folder(job.job.id, run.task.id), env

    def _task_packages(self, node: SimNode, run: TaskRun) -> Dict[str, str]:
        assert node.local is not None
        found: Dict[str, str] = {}
        for ref in run.task.packages:
            try:
                app, version, archive, default = self.service.apps.resolve(ref)
                name, folder = node.local.install_archive(app, version, archive, default)
            except (BatchError, OSError, ValueError) as e:
                raise StartError("application package %s%s could not be deployed: %s" % (
                    ref.app, " version %s" % ref.version if ref.version else "", e)) from None
            found[name] = folder
        return found

    # -- metrics for autoscale ------------------------------------------------------------------

    def metrics(self) -> Dict[str, float]:
        active = running = succeeded = failed = 0
        for job in self.scheduler.jobs:
            for run in job.runs:
                if run.state == "running":
                    running += 1
                elif run.state == "pending" and job.state == "active" and \
                        self.scheduler.deps(job, run) == "ready":
                    active += 1
                elif run.state == "succeeded":
                    succeeded += 1
                elif run.state in ("failed", "timed_out", "terminated"):
                    failed += 1
        dedicated, low = self.counts()
        preempted = sum(1 for n in self.nodes.values() if n.state == "preempted")
        usable = sum(1 for n in self.nodes.values() if n.host.usable)
        return {"ActiveTasks": active, "RunningTasks": running,
                "PendingTasks": active + running, "SucceededTasks": succeeded,
                "FailedTasks": failed, "CurrentDedicatedNodes": dedicated,
                "CurrentLowPriorityNodes": low, "PreemptedNodeCount": preempted,
                "UsableNodeCount": usable, "TaskSlotsPerNode": self.slots}

    def current(self) -> Dict[str, Any]:
        values: Dict[str, Any] = dict(self.metrics())
        values.update({"TargetDedicatedNodes": self.target_dedicated,
                       "TargetLowPriorityNodes": self.target_low,
                       "NodeDeallocationOption": self.deallocation})
        return values

    # -- what the API shows -----------------------------------------------------------------------

    def to_json(self) -> Dict[str, Any]:
        url = "%s/pools/%s" % (self.service.url, self.id)
        dedicated, low = self.counts()
        document: Dict[str, Any] = {"id": self.id, "url": url, "eTag": self.etag,
                                    "lastModified": iso(self.changed),
                                    "creationTime": iso(self.created), "state": self.state,
                                    "stateTransitionTime": iso(self.created),
                                    "allocationState": self.allocation_state(),
                                    "allocationStateTransitionTime": iso(self.alloc_changed),
                                    "resizeTimeout": self.resize_timeout}
        for key, value in self.spec.items():
            if key not in ("id", "targetDedicatedNodes", "targetLowPriorityNodes",
                           "enableAutoScale", "autoScaleFormula",
                           "autoScaleEvaluationInterval", "resizeTimeout"):
                document[key] = value
        document.update({"currentDedicatedNodes": dedicated, "currentLowPriorityNodes": low,
                         "targetDedicatedNodes": self.target_dedicated,
                         "targetLowPriorityNodes": self.target_low,
                         "enableAutoScale": self.scaler is not None,
                         "taskSlotsPerNode": self.slots,
                         "taskSchedulingPolicy": {"nodeFillType": self.scheduler.fill},
                         "enableInterNodeCommunication": bool(
                             self.spec.get("enableInterNodeCommunication", False))})
        if self.scaler is not None:
            document.update(self.scaler.to_json())
        if self.service.pool_identity(self.id):
            document["identity"] = self.service.pool_identity(self.id)
        return document

    @property
    def etag(self) -> str:
        return etag(self.version, self.created)


def _removal_order(node: SimNode) -> Tuple[int, int]:
    """Nodes a shrink removes first: those doing nothing useful, then idle, then busy."""
    rank = {"creating": 0, "preempted": 1, "unusable": 1, "starttaskfailed": 1,
            "starting": 2, "waitingforstarttask": 2, "idle": 3}.get(node.state, 4)
    return rank, len(node.host.running)


def start_task(raw: Optional[Dict[str, Any]]) -> Optional[StartTask]:
    if not raw:
        return None
    try:
        argv = split_command(raw["commandLine"], "the pool's start task")
    except SpecError as e:
        raise property_error("InvalidPropertyValue", "startTask.commandLine",
                             raw["commandLine"], str(e)) from None
    return StartTask(command_line=raw["commandLine"], argv=argv,
                     environment=environment(raw.get("environmentSettings")),
                     max_retries=int(raw.get("maxTaskRetryCount", 0)),
                     wait_for_success=bool(raw.get("waitForSuccess", True)))


def environment(settings: Optional[List[Dict[str, Any]]]) -> Dict[str, str]:
    return {s["name"]: str(s.get("value") or "") for s in settings or []}


# -- the operations ----------------------------------------------------------------------------

def add(service: "BatchService", call: "Call") -> Any:
    body = call.body(schema.POOL)
    create_pool(service, body)
    return call.created("%s/pools/%s" % (service.url, body["id"]), service.pools[
        body["id"].lower()])


def create_pool(service: "BatchService", body: Dict[str, Any],
                identity: Optional[Dict[str, Any]] = None) -> Pool:
    """A new pool from a data-plane body (the account plane's pools come here too)."""
    if body["id"].lower() in service.pools:
        raise BatchError("PoolExists")
    scaling = _scaling(body)
    service.apps.check_refs(body.get("applicationPackageReferences"))
    spec = copy.deepcopy(body)
    pool = Pool(service, spec)
    if scaling is not None:
        pool.scaler = new_scaler(service, pool, *scaling)
    service.pools[pool.id.lower()] = pool
    if identity:
        service.identities[pool.id.lower()] = identity
    service.attach_jobs(pool)
    service.wake()
    return pool


def _scaling(body: Dict[str, Any]) -> Optional[Tuple[str, float]]:
    """(formula, interval) of an autoscale pool, None for a fixed one; what Batch refuses."""
    if body.get("enableAutoScale"):
        if not body.get("autoScaleFormula"):
            raise property_error("MissingRequiredProperty", "autoScaleFormula")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if body.get(name) is not None:
                raise property_error("InvalidPropertyValue", name, body[name],
                                     "not allowed when enableAutoScale is true")
        return body["autoScaleFormula"], interval_seconds(body.get("autoScaleEvaluationInterval"))
    if body.get("autoScaleFormula") is not None:
        raise property_error("InvalidPropertyValue", "autoScaleFormula",
                             reason="allowed only when enableAutoScale is true")
    return None


def interval_seconds(text: Optional[str]) -> float:
    from .wire import duration_seconds

    if text is None:
        return DEFAULT_INTERVAL
    seconds = duration_seconds(text) or 0.0
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise property_error("InvalidPropertyValue", "autoScaleEvaluationInterval", text,
                             "from 5 minutes to 168 hours")
    return seconds


def new_scaler(service: "BatchService", pool: Pool, formula: str, interval: float) -> AutoScaler:
    try:
        return AutoScaler(formula, interval, service.clock.now())
    except Exception as e:  # the formula module's FormulaError, whatever it subclasses
        raise formula_error(e) from None


def get(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    call.check_conditions(pool.etag, pool.changed)
    return call.resource(pool.to_json(), pool, "pools/@Element")


def exists(service: "BatchService", call: "Call") -> Any:
    pool = service.pools.get(call.params["poolId"].lower())
    if pool is None:
        return call.empty(404)
    return call.empty(200, pool)


def list_pools(service: "BatchService", call: "Call") -> Any:
    return call.listing(list(service.pools.values()), "pools", render=Pool.to_json,
                        key=lambda p: p.id.lower())


def delete(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    call.check_conditions(pool.etag, pool.changed)
    service.delete_pool(pool)
    return call.empty(202)


def patch(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    call.check_conditions(pool.etag, pool.changed)
    body = call.body(schema.POOL_PATCH)
    update_pool(service, pool, body)
    return call.empty(200, pool)


def replace(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    body = call.body(schema.POOL_REPLACE)
    if "startTask" not in body:
        pool.spec.pop("startTask", None)
    update_pool(service, pool, body)
    return call.empty(204, pool)


def update_pool(service: "BatchService", pool: Pool, body: Dict[str, Any]) -> None:
    _active(pool)
    if "taskSlotsPerNode" in body and body["taskSlotsPerNode"] != pool.slots and pool.nodes:
        raise property_error("InvalidPropertyValue", "taskSlotsPerNode",
                             body["taskSlotsPerNode"], "the pool has nodes: shrink it to 0 "
                             "first")
    service.apps.check_refs(body.get("applicationPackageReferences"))
    for key, value in body.items():
        if value is None or (isinstance(value, list) and not value):
            pool.spec.pop(key, None)
        else:
            pool.spec[key] = copy.deepcopy(value)
    pool._adopt(pool.spec)
    if "taskSchedulingPolicy" in body:
        pool.scheduler.fill = body["taskSchedulingPolicy"]["nodeFillType"].lower()
    pool.touch()


def resize(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    call.check_conditions(pool.etag, pool.changed)
    body = call.body(schema.POOL_RESIZE)
    _active(pool)
    if pool.scaler is not None:
        raise BatchError("OperationInvalidForCurrentState",
                         "The pool has automatic scaling enabled: resize it by its formula, "
                         "or disable automatic scaling first.")
    if pool.allocation_state() != "steady":
        raise BatchError("PoolBeingResized")
    if body.get("resizeTimeout"):
        pool.resize_timeout = body["resizeTimeout"]
    pool.set_targets(body.get("targetDedicatedNodes", 0), body.get("targetLowPriorityNodes", 0),
                     body.get("nodeDeallocationOption"))
    return call.empty(202, pool)


def stop_resize(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    _active(pool)
    dedicated, low = pool.counts()
    pool.target_dedicated, pool.target_low = dedicated, low
    pool.stopping = True
    pool.touch()
    return call.empty(202, pool)


def enable_autoscale(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    call.check_conditions(pool.etag, pool.changed)
    body = call.body(schema.POOL_AUTOSCALE)
    _active(pool)
    if pool.scaler is None and pool.allocation_state() != "steady":
        raise BatchError("PoolBeingResized")
    formula = body.get("autoScaleFormula") or (pool.scaler.text if pool.scaler else None)
    if not formula:
        raise property_error("MissingRequiredProperty", "autoScaleFormula")
    interval = interval_seconds(body["autoScaleEvaluationInterval"]) \
        if body.get("autoScaleEvaluationInterval") else \
        (pool.scaler.interval if pool.scaler else DEFAULT_INTERVAL)
    history = pool.scaler.history if pool.scaler else None
    pool.scaler = new_scaler(service, pool, formula, interval)
    if history is not None:
        pool.scaler.history = history
    pool.touch()
    service.wake()
    return call.empty(200, pool)


def disable_autoscale(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    pool.scaler = None
    pool.touch()
    return call.empty(200, pool)


def evaluate_autoscale(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    body = call.body(schema.POOL_EVALUATE)
    if pool.scaler is None:
        raise BatchError("OperationInvalidForCurrentState",
                         "Automatic scaling is not enabled on the pool: enable it to evaluate "
                         "a formula.")
    run = pool.scaler.evaluate_text(body["autoScaleFormula"], pool, service.clock.now())
    return call.document(200, run)


def remove_nodes(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    call.check_conditions(pool.etag, pool.changed)
    body = call.body(schema.NODE_REMOVE)
    _active(pool)
    if pool.scaler is not None:
        raise BatchError("OperationInvalidForCurrentState",
                         "The pool has automatic scaling enabled: its formula sets its size.")
    nodes = []
    for index, node_id in enumerate(body["nodeList"]):
        node = pool.nodes.get(node_id)
        if node is None:
            raise property_error("InvalidPropertyValue", "nodeList[%d]" % index, node_id,
                                 "no such node in pool %s" % pool.id)
        nodes.append(node)
    option = (body.get("nodeDeallocationOption") or "requeue").lower()
    for node in nodes:
        if node.dedicated:
            pool.target_dedicated -= 1
        else:
            pool.target_low -= 1
        if node.remove(option):
            del pool.nodes[node.id]
    pool.alloc_changed = time.time()
    pool.touch()
    service.wake()
    return call.empty(202, pool)


def _active(pool: Pool) -> None:
    if pool.state != "active":
        raise BatchError("PoolBeingDeleted")
