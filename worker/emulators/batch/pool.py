"""A pool and what it does on its own between requests: reach its target node counts,
preempt spot nodes at the ``--preempt-rate``, bring preempted nodes back, evaluate its
autoscale formula; what its nodes' tasks get (packages, variables) and what autoscale
samples of it; how the API shows it.

A pool's nodes run its jobs' tasks through one scheduler (``worker.deploy.localbatch``'s),
which fills them by the pool's ``taskSchedulingPolicy`` (``spread`` by default, or
``pack``) up to ``taskSlotsPerNode`` slots each. The operations on pools are ``pools.py``.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ...deploy.errors import SpecError
from ...deploy.localbatch.documents import PackageRef, StartTask, split_command
from ...deploy.localbatch.scheduler import Host, JobRun, Scheduler, StartError, TaskRun
from . import quotas
from .errors import BatchError, property_error
from .nodes import SimNode
from .scaling import AutoScaler
from .wire import etag, iso

if TYPE_CHECKING:
    from .service import BatchService

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
        self.short: Set[bool] = set()  # dedicated (True), spot (False) held by a core quota
        self.resize_errors: List[Dict[str, Any]] = []  # of the last resize
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
        the targets (short of them by a quota, the resize is over); ``stopping`` after a
        stop-resize until that is over."""
        busy = any(n.state == "creating" or n.leaving for n in self.nodes.values())
        if self.stopping:
            return "stopping" if busy else "steady"
        staying = [n for n in self.nodes.values() if not n.leaving]
        for dedicated, target in ((True, self.target_dedicated), (False, self.target_low)):
            have = sum(1 for n in staying if n.dedicated == dedicated)
            if have != target and not (have < target and dedicated in self.short):
                busy = True
        return "resizing" if busy else "steady"

    def set_targets(self, dedicated: int, low: int, option: Optional[str] = None) -> None:
        if (dedicated, low) != (self.target_dedicated, self.target_low):
            self.alloc_changed = time.time()
        self.target_dedicated, self.target_low = dedicated, low
        self.deallocation = (option or "requeue").lower()
        self.stopping = False
        self.short, self.resize_errors = set(), []  # a new resize
        self.touch()
        self.service.wake()

    def stop_resize(self) -> None:
        """Stop where the nodes are: the targets become the current counts."""
        self.target_dedicated, self.target_low = self.counts()
        self.stopping = True
        self.touch()

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
            wanted = target - len(staying)
            if wanted > 0 and dedicated not in self.short:
                fit = quotas.nodes_that_fit(self, dedicated)
                for _ in range(min(wanted, fit)):
                    self._add_node(dedicated, now)
                if fit < wanted:
                    self._quota_reached(dedicated)
            for node in sorted(staying, key=_removal_order)[:max(0, len(staying) - target)]:
                if node.remove(self.deallocation):
                    del self.nodes[node.id]

    def _quota_reached(self, dedicated: bool) -> None:
        """The resize ends short of the target: Batch's resize error says which quota."""
        code, message = quotas.RESIZE_ERRORS[dedicated]
        self.short.add(dedicated)
        self.resize_errors.append({"code": code, "message": message})
        self.alloc_changed = time.time()
        self.touch()

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
        if self.resize_errors:
            document["resizeErrors"] = list(self.resize_errors)
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
