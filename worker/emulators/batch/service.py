"""The Batch account: its pools, jobs and applications, one lock over all of them, and the
thread that moves things along between requests (nodes boot and leave, tasks start and end,
autoscale runs, spot nodes are preempted, jobs complete).

Requests and that thread change state only while holding :attr:`BatchService.lock`; a task
process that ends, a node that finished booting and a request that changed something wake
the thread (:meth:`BatchService.wake`), so it sleeps rather than polls.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import threading
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from ...deploy.localbatch.scheduler import Scheduler, StartError, TaskRun
from ..tokens import TokenIssuer
from .applications import Applications
from .clock import Clock
from .errors import BatchError
from .jobs import JobRecord
from .nodes import SimNode
from .pool import Pool
from .roles import RoleAssignments

log = logging.getLogger(__name__)
IDLE = 1.0  # the longest the thread sleeps when nothing wakes it (real seconds)


class BatchSettings(NamedTuple):
    """What ``emulate --batch`` takes: the account, its key, the clock and spot nodes."""

    account: str = "localbatch"
    key: Optional[str] = None  # base64; a random one when None
    time_scale: float = 1.0  # service seconds per real second
    preempt_rate: float = 0.0  # preemptions per spot node-hour of service time
    seed: Optional[int] = None  # of the preemption draws
    recovery: float = 120.0  # service seconds a preempted node stays away
    node_start: float = 0.0  # service seconds a new node takes to be allocated
    kill_after: float = 30.0  # real seconds from SIGTERM to SIGKILL when a task is ended
    dedicated_core_quota: int = 1000  # the account's quotas, as Azure enforces them
    low_priority_core_quota: int = 1000
    pool_quota: int = 100
    subscription: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "local-rg"
    location: str = "local"


def new_key() -> str:
    return base64.b64encode(os.urandom(64)).decode("ascii")


def _cannot_run(*_: Any) -> Any:
    raise StartError("the job's pool does not exist")


class BatchService:
    """One Batch account."""

    def __init__(self, settings: BatchSettings, issuer: TokenIssuer, root: Path,
                 machine: Optional[Callable[[str], Dict[str, str]]] = None) -> None:
        self.settings = settings
        self.account = settings.account
        self.key = settings.key or new_key()
        self.issuer = issuer
        self.root = Path(root)
        self.lock = threading.RLock()
        self.wakeup = threading.Event()
        self.clock = Clock(settings.time_scale)
        self.random = random.Random(settings.seed)
        self.pools: Dict[str, Pool] = {}
        self.jobs: Dict[str, JobRecord] = {}
        self.identities: Dict[str, Any] = {}
        self.roles = RoleAssignments()  # who may do what with a token (the host configures)
        self.apps = Applications(self.root / "packages")
        self.limbo = Scheduler(_cannot_run, wakeup=self.wakeup)  # jobs without a pool
        self.url = "https://127.0.0.1"
        self._machine = machine or (lambda node_id: {})
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- running -----------------------------------------------------------------------------

    def start(self) -> "BatchService":
        (self.root / "nodes").mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="batch-service", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, then every node (their processes are killed)."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self.lock:
            for pool in self.pools.values():
                pool.remove_all()

    def wake(self) -> None:
        self.wakeup.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.wakeup.clear()
            try:
                with self.lock:
                    due = self.tick()
            except Exception:  # the one boundary: a bug here must not stop the service
                log.exception("the batch service's loop failed; going on")
                due = IDLE
            self.wakeup.wait(max(0.001, due))

    def tick(self) -> float:
        """One pass over everything; real seconds until something is due."""
        now = self.clock.now()
        due = IDLE
        for pool in list(self.pools.values()):
            due = min(due, self.clock.real(pool.tick(now)))
        for pool in list(self.pools.values()):
            due = min(due, pool.scheduler.step())
        for job in list(self.jobs.values()):
            job.tick(now)
        return due

    # -- finding things ------------------------------------------------------------------------

    def pool(self, pool_id: str) -> Pool:
        pool = self.pools.get(pool_id.lower())
        if pool is None:
            raise BatchError("PoolNotFound")
        return pool

    def job(self, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id.lower())
        if job is None:
            raise BatchError("JobNotFound")
        return job

    def task(self, job_id: str, task_id: str) -> Tuple[JobRecord, TaskRun]:
        job = self.job(job_id)
        run = job.run.by_id.get(task_id.lower())
        if run is None:
            raise BatchError("TaskNotFound")
        return job, run

    def find_run(self, job_id: str, task_id: str) -> Optional[TaskRun]:
        job = self.jobs.get(job_id.lower())
        return job.run.by_id.get(task_id.lower()) if job else None

    def node_of(self, job: JobRecord, run: TaskRun) -> Optional[SimNode]:
        """The node a task runs or ran on, while that node (that boot of it) is there."""
        pool = self.pools.get(job.pool_id.lower())
        if run.host is None or pool is None:
            return None
        node = pool.nodes.get(run.host.name)
        return node if node is not None and node.host is run.host else None

    def machine_environment(self, node_id: str) -> Dict[str, str]:
        return dict(self._machine(node_id))

    def arm_prefix(self) -> str:
        """The account's ARM resource id."""
        return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Batch/batchAccounts/%s"
                % (self.settings.subscription, self.settings.resource_group, self.account))

    def pool_identity(self, pool_id: str) -> Optional[Dict[str, Any]]:
        return self.identities.get(pool_id.lower())

    # -- jobs on pools ---------------------------------------------------------------------------

    def scheduler_of(self, job: JobRecord) -> Scheduler:
        pool = self.pools.get(job.pool_id.lower())
        return pool.scheduler if pool is not None and pool.state == "active" else self.limbo

    def attach_job(self, job: JobRecord) -> None:
        scheduler = self.scheduler_of(job)
        if job.run not in scheduler.jobs:
            scheduler.jobs.append(job.run)
        self.wake()

    def detach_job(self, job: JobRecord) -> None:
        for scheduler in [self.limbo] + [p.scheduler for p in self.pools.values()]:
            if job.run in scheduler.jobs:
                for run in job.run.running():
                    scheduler.requeue(run, "requeued: the job moved to another pool")
                scheduler.jobs.remove(job.run)

    def attach_jobs(self, pool: Pool) -> None:
        for job in self.jobs.values():
            if job.pool_id.lower() == pool.id.lower():
                self.detach_job(job)
                self.attach_job(job)

    def delete_pool(self, pool: Pool) -> None:
        pool.state = "deleting"
        pool.scaler = None
        pool.remove_all()
        del self.pools[pool.id.lower()]
        self.identities.pop(pool.id.lower(), None)
        for job in self.jobs.values():
            if job.pool_id.lower() == pool.id.lower():
                self.detach_job(job)
                self.attach_job(job)

    def delete_job(self, job: JobRecord) -> None:
        job.deleting = True
        scheduler = self.scheduler_of(job)
        for run in list(job.run.runs):
            scheduler.delete_task(job.run, run)
        self.detach_job(job)
        del self.jobs[job.id.lower()]
