"""A pool's compute nodes. Each is a folder laid out as a Batch node, with Batch's variables
(the node implementation ``local-batch`` uses: ``worker.deploy.localbatch``), booted by a
thread of its own: it waits the allocation time, makes the folders, extracts the pool's
application packages and runs the start task (retried up to its ``maxTaskRetryCount``;
with ``waitForSuccess`` no task starts before it succeeded, and its failure leaves the node
``starttaskfailed``). Tasks run on the node's slots through the pool's scheduler.

A spot node can be preempted (``preempt``): its processes are killed, its disk is gone, its
running tasks run again elsewhere, and after a while it comes back as a fresh node (Batch's
``preempted`` state, then ``starting``). A node removed from the pool leaves by its
deallocation option: ``requeue`` (at once), ``terminate`` (its tasks end), ``taskcompletion``
or ``retaineddata`` (when its tasks are done).

Every method here is called with the service's lock held, except the boot thread's body.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple

from ...deploy.localbatch.node import LocalNode
from ...deploy.localbatch.scheduler import Host
from ...deploy.localbatch.starttask import StartTaskRun, run_start_task
from .errors import BatchError
from .wire import iso

if TYPE_CHECKING:
    from .pool import Pool

AGENT_VERSION = "1.11.2"  # what nodeAgentInfo says: a version of Batch's Linux agent
RECENT = 5  # recentTasks kept per node


class SimNode:
    """One compute node of a pool."""

    def __init__(self, pool: "Pool", node_id: str, dedicated: bool, allocate_at: float):
        self.pool = pool
        self.id = node_id
        self.dedicated = dedicated
        self.state = "creating"
        self.created = self.changed = time.time()
        self.booted: Optional[float] = None
        self.scheduling = "enabled"
        self.allocate_at = allocate_at  # service time at which its VM is there
        self.recover_at: Optional[float] = None  # preempted: service time it comes back
        self.leaving: Optional[str] = None  # the deallocation option it leaves by
        self.host = Host(node_id, pool.slots)
        self.host.usable = False
        self.local: Optional[LocalNode] = None
        self.start_run: Optional[StartTaskRun] = None
        self.start_started: Optional[float] = None
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.tasks_run = 0
        self.recent: Deque[Tuple[str, str]] = deque(maxlen=RECENT)
        self.version = 0

    @property
    def root(self) -> Path:
        return self.pool.service.root / "nodes" / self.pool.id / self.id

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state, self.changed = state, time.time()
        self.version += 1

    # -- life ------------------------------------------------------------------------------------

    def boot(self) -> None:
        """Start the boot thread: folders, packages, start task, then ready for tasks."""
        self.stop = threading.Event()
        self.host = Host(self.id, self.pool.slots)
        self.host.usable = False
        self.pool.scheduler.hosts.append(self.host)
        self.start_run, self.start_started = None, None
        self.set_state("starting")
        self.local = LocalNode(self.root, self.pool.service.account, self.pool.id, {},
                               node_id=self.id, dedicated=self.dedicated,
                               account_url=self.pool.service.url,
                               machine=self.pool.service.machine_environment(self.id))
        self.thread = threading.Thread(target=self._boot, args=(self.stop, self.local),
                                       name="node-%s" % self.id, daemon=True)
        self.thread.start()

    def _boot(self, stop: threading.Event, local: LocalNode) -> None:
        service = self.pool.service
        try:
            local.make_folders()
            variables = self._install(local)
        except (OSError, BatchError, ValueError) as e:
            with service.lock:
                if not stop.is_set():
                    self._unusable("its application packages did not deploy: %s" % e)
            return
        with service.lock:
            if stop.is_set():
                return
            self.booted = time.time()
            local.variables.update(variables)
            start = self.pool.start_task
            if start is None or not start.wait_for_success:
                self._ready()
            else:
                self.set_state("waitingforstarttask")
            if start is None:
                return
            self.start_started = time.time()
            env = local.start_task_environment(os.environ, start.environment)
        record = run_start_task(local, start, env, "boot", stop)
        with service.lock:
            if stop.is_set():
                return
            self.start_run = record
            self.version += 1
            if start.wait_for_success:
                if record.exit_code == 0:
                    self._ready()
                else:
                    self.set_state("starttaskfailed")
            service.wake()

    def _install(self, local: LocalNode) -> Dict[str, str]:
        found: Dict[str, str] = {}
        for ref in self.pool.package_refs:
            app, version, archive, default = self.pool.service.apps.resolve(ref)
            name, folder = local.install_archive(app, version, archive, default)
            found[name] = folder
        return found

    def _ready(self) -> None:
        self.host.usable = True
        self.set_state("idle")
        self.pool.service.wake()

    def _unusable(self, why: str) -> None:
        self.set_state("unusable")
        self.pool.notes.append("node %s: %s" % (self.id, why))

    def preempt(self) -> None:
        """A spot node's VM is taken back: its tasks are requeued and its disk is lost."""
        self._halt("requeued: node %s was preempted" % self.id)
        self.set_state("preempted")
        self.recover_at = self.pool.service.clock.now() + self.pool.service.settings.recovery

    def recover(self) -> None:
        """The preempted node comes back, a fresh VM."""
        self.recover_at = None
        self.boot()

    def remove(self, option: str) -> bool:
        """Leave the pool by ``option``; True once gone (``requeue``: at once)."""
        self.leaving = option
        self.host.accepting = False
        if option == "requeue" or not self.host.running or not self.host.usable:
            self._halt("requeued: node %s left the pool" % self.id)
            return True
        if option == "terminate":
            self.pool.scheduler.end_running_on(self.host)
        self.set_state("leavingpool")
        return False

    def gone_yet(self) -> bool:
        """A leaving node whose tasks are done goes."""
        if self.leaving is not None and not self.host.running:
            self._halt("requeued: node %s left the pool" % self.id)
            return True
        return False

    def _halt(self, why: str) -> None:
        """Kill everything on the node and forget its disk (moved aside at once, so that the
        node's next boot starts on an empty one, and removed in the background)."""
        self.stop.set()
        self.pool.scheduler.lose_host(self.host, why)
        root = self.root
        trash = root.with_name(".gone-%s-%d" % (self.id, next(_GONE)))
        try:
            root.rename(trash)
        except OSError:
            return  # it never had a disk
        threading.Thread(target=_wipe, args=(self.thread, trash), daemon=True,
                         name="wipe-%s" % self.id).start()

    # -- what the API shows ------------------------------------------------------------------------

    def api_state(self) -> str:
        if self.state == "idle" and self.host.running:
            return "running"
        return self.state

    def to_json(self, url: str) -> Dict[str, Any]:
        pool = self.pool
        document: Dict[str, Any] = {
            "id": self.id, "url": url, "state": self.api_state(),
            "schedulingState": self.scheduling,
            "stateTransitionTime": iso(self.changed),
            "allocationTime": iso(self.created), "ipAddress": "127.0.0.1",
            "affinityId": "TVM:%s" % self.id, "vmSize": pool.spec.get("vmSize"),
            "totalTasksRun": self.tasks_run,
            "totalTasksSucceeded": self._succeeded(),
            "runningTasksCount": len(self.host.running),
            "runningTaskSlotsCount": self.host.slots - self.host.free(),
            "recentTasks": self._recent(),
            "isDedicated": self.dedicated,
            "nodeAgentInfo": {"version": AGENT_VERSION, "lastUpdateTime": iso(self.created)},
            "virtualMachineInfo": {"imageReference": pool.image()},
        }
        if self.booted:
            document["lastBootTime"] = iso(self.booted)
        if pool.spec.get("startTask"):
            document["startTask"] = pool.spec["startTask"]
            document["startTaskInfo"] = self._start_info()
        return {k: v for k, v in document.items() if v is not None}

    def _start_info(self) -> Optional[Dict[str, Any]]:
        if self.start_started is None:
            return None
        record = self.start_run
        if record is None:
            return {"state": "running", "startTime": iso(self.start_started), "retryCount": 0}
        info: Dict[str, Any] = {
            "state": "completed", "startTime": iso(self.start_started),
            "endTime": iso(self.start_started + record.duration_s),
            "exitCode": record.exit_code, "retryCount": max(0, record.tries - 1),
            "result": "success" if record.exit_code == 0 else "failure"}
        if record.exit_code != 0:
            info["failureInfo"] = {
                "category": "usererror", "code": "FailureExitCode",
                "message": "The task exited with an exit code representing a failure",
                "details": [{"name": "Message", "value": record.error or
                             "exit code %s" % record.exit_code}]}
        return info

    def _recent(self) -> List[Dict[str, Any]]:
        out = []
        for job_id, task_id in self.recent:
            run = self.pool.service.find_run(job_id, task_id)
            if run is not None:
                out.append({"taskUrl": "%s/jobs/%s/tasks/%s" % (self.pool.service.url, job_id,
                                                                  task_id),
                            "jobId": job_id, "taskId": task_id,
                            "taskState": "completed" if run.state in _DONE else "running"})
        return out

    def _succeeded(self) -> int:
        return sum(1 for job in self.pool.service.jobs.values() for run in job.run.runs
                   if run.host is self.host and run.state == "succeeded")


_DONE = ("succeeded", "failed", "timed_out", "terminated")
_GONE = itertools.count(1)


def _wipe(thread: Optional[threading.Thread], root: Path) -> None:
    """Remove a node's folder once its boot thread (and start task) have stopped."""
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=60)
    shutil.rmtree(str(root), ignore_errors=True)


# -- the operations ----------------------------------------------------------------------------

def _url(node: SimNode) -> str:
    return "%s/pools/%s/nodes/%s" % (node.pool.service.url, node.pool.id, node.id)


def list_nodes(service: Any, call: Any) -> Any:
    pool = service.pool(call.params["poolId"])
    return call.listing(list(pool.nodes.values()), "nodes", render=lambda n: n.to_json(_url(n)),
                        key=lambda n: n.id)


def get_node(service: Any, call: Any) -> Any:
    pool = service.pool(call.params["poolId"])
    node = pool.nodes.get(call.params["nodeId"])
    if node is None:
        raise BatchError("NodeNotFound")
    return call.resource(node.to_json(_url(node)), None, "nodes/@Element")


def preempt(service: Any, call: Any) -> Any:
    """``emulate batch preempt NODE``: the emulator's own operation, not Batch's."""
    node_id = call.params["nodeId"]
    for pool in service.pools.values():
        node = pool.nodes.get(node_id)
        if node is None:
            continue
        if node.dedicated:
            raise BatchError("OperationNotValidOnNode", "Node %s is dedicated: only spot "
                             "(low-priority) nodes are preempted." % node_id)
        if node.state in ("creating", "preempted") or node.leaving:
            raise BatchError("OperationNotValidOnNode", "Node %s is %s." % (
                node_id, node.leaving and "leaving the pool" or node.state))
        running = len(node.host.running)
        node.preempt()
        return call.document(200, {"poolId": pool.id, "nodeId": node_id, "requeued": running})
    raise BatchError("NodeNotFound", "No pool of the account has a node %s." % node_id)
