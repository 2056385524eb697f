"""Jobs' tasks on nodes' slots, as a Batch pool runs them: the one implementation behind
``local-batch`` (one node, one job whose tasks are all known) and the local Batch service
(a pool's nodes, its jobs, tasks added, reactivated and deleted while they run).

- A task starts when its dependencies allow it (each one succeeded, or failed with the
  ``dependencyAction`` ``satisfy``; one that failed with ``block`` blocks it) and a node
  has its ``requiredSlots`` free: the first such node (``pack``) or the one with the most
  free slots (``spread``). Tasks start in the order they were added; retried and requeued
  ones go first. A job's ``maxParallelTasks`` caps its running tasks.
- A non-zero exit is retried in the same task folder up to ``maxTaskRetryCount`` (-1: no
  limit). The final exit code picks the task's ``exitOptions`` (``exitConditions``): the
  ``dependencyAction`` for its dependents, and, when the job says
  ``performexitoptionsjobaction``, the ``jobAction``: ``disable`` requeues the running tasks
  and starts no more, ``terminate`` ends them (SIGTERM) and starts no more.
- A task past its ``maxWallClockTime`` is killed as Batch kills it, SIGKILL to its process
  group, and not retried (state ``timed_out``, exit code -9 as Batch reports on Linux).
- A node lost (a spot node preempted, a node removed with ``requeue``) requeues what ran on
  it: killed, run again from the start elsewhere, not counted as a retry (Batch's
  ``requeueCount``). ``--recover TASK=WHEN`` does the same to one task; ``--terminate
  TASK=WHEN`` sends it SIGTERM (then SIGKILL after ``kill_after`` seconds) and it ends
  ``terminated``.

Nothing here is thread-safe: one thread drives a scheduler (``step``), or callers hold the
lock that thread holds. Processes that end wake it (``wake``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

from .documents import Job, Task, exit_options
from .process import Attempt, Trigger

POLL = 0.02  # how often an output trigger (--recover TASK=stderr:TEXT) looks
IDLE = 1.0  # the longest a scheduler sleeps when nothing wakes it
KILL_AFTER = 30.0  # seconds from SIGTERM to SIGKILL
COMPLETED = ("succeeded", "failed", "timed_out", "terminated")
FINAL = COMPLETED + ("blocked", "not_run")
BLOCKED = "a task it depends on failed with dependencyAction block"
DepKey = Union[str, int]  # a task id (lower case) or, from a taskIdRange, an integer id


class StartError(Exception):
    """A task that cannot start on its node (a package that is missing, ...): it completes
    as a pre-processing error, as Batch's do, without running."""


@dataclass(eq=False)
class TaskRun:
    """A task's state in its job and what a report or the service says of it."""

    task: Task
    state: str = "pending"  # pending, running, then one of FINAL
    attempts: int = 0
    requeues: int = 0
    retries: int = 0
    exit_code: Optional[int] = None
    failure: Optional[str] = None
    outcome: Optional[str] = None  # exit, timeout, terminated, start_error: why it ended
    dependency_action: Optional[str] = None
    blocked_by: Optional[str] = None  # the dependency that blocks it
    duration_s: float = 0.0
    current: Optional[Attempt] = None
    terminating_since: Optional[float] = None
    host: Optional["Host"] = None  # where it runs, or ran last
    started_at: Optional[float] = None  # epoch seconds, of the last start
    ended_at: Optional[float] = None
    retried_at: Optional[float] = None
    requeued_at: Optional[float] = None
    changed_at: float = field(default_factory=time.time)
    previous_state: Optional[str] = None
    previous_changed_at: Optional[float] = None
    version: int = 0  # bumped at every change: the service's eTag
    dep_keys: List[DepKey] = field(default_factory=list)
    dep_cursor: int = 0  # the dependencies before it are known to be met

    def to_dict(self) -> Dict[str, object]:
        return {"id": self.task.id, "state": self.state, "exit_code": self.exit_code,
                "attempts": self.attempts, "requeues": self.requeues,
                "duration_s": round(self.duration_s, 3), "failure": self.failure,
                "dependency_action": self.dependency_action}

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.previous_state, self.previous_changed_at = self.state, self.changed_at
            self.state, self.changed_at = state, time.time()
        self.version += 1


class Host:
    """A node's slots as the scheduler sees them: ``usable`` while it may run tasks (booted,
    its start task done), ``accepting`` while it may get new ones."""

    def __init__(self, name: str, slots: int) -> None:
        self.name = name
        self.slots = slots
        self.running: List[TaskRun] = []
        self.usable = True
        self.accepting = True

    def free(self) -> int:
        return self.slots - sum(r.task.required_slots for r in self.running)


class JobRun:
    """A job's tasks on the scheduler, in the order they were added."""

    def __init__(self, job: Job, tasks: Sequence[Task] = ()) -> None:
        self.job = job
        self.runs: List[TaskRun] = []
        self.by_id: Dict[str, TaskRun] = {}
        self.by_number: Dict[int, TaskRun] = {}
        self.pending: Deque[TaskRun] = deque()  # may hold runs no longer pending: skipped
        self.state = "active"  # or disabled, terminated
        self.why = ""  # what stopped it, in local-batch's words
        self.reason: Optional[str] = None  # Batch's terminateReason
        self.completions = 0  # tasks completed so far: onAllTasksComplete looks after each
        for task in tasks:
            self.add(task)

    @property
    def state_text(self) -> str:
        return "active" if self.state == "active" else self.why

    def add(self, task: Task) -> TaskRun:
        run = TaskRun(task, dep_keys=_dep_keys(task))
        self.runs.append(run)
        self.by_id[task.id.lower()] = run
        if task.id.isdigit():
            self.by_number.setdefault(int(task.id), run)
        self.pending.append(run)
        return run

    def remove(self, run: TaskRun) -> None:
        self.runs.remove(run)
        del self.by_id[run.task.id.lower()]
        if task_number(run.task.id) is not None and \
                self.by_number.get(int(run.task.id)) is run:
            del self.by_number[int(run.task.id)]
        run.set_state("deleted")

    def find(self, key: DepKey) -> Optional[TaskRun]:
        return self.by_number.get(key) if isinstance(key, int) else self.by_id.get(key)

    def running(self) -> List[TaskRun]:
        return [r for r in self.runs if r.state == "running"]


Prepare = Callable[[JobRun, TaskRun, Host], Tuple[Path, Dict[str, str]]]


class Scheduler:
    """Runs the tasks of ``jobs`` on ``hosts``. ``prepare(job, run, host)`` gives a task's
    folder and variables on that host (or raises :class:`StartError`)."""

    def __init__(self, prepare: Prepare, hosts: Sequence[Host] = (), fill: str = "spread",
                 recover: Optional[Dict[str, Trigger]] = None,
                 terminate: Optional[Dict[str, Trigger]] = None,
                 kill_after: float = KILL_AFTER,
                 wakeup: Optional[threading.Event] = None) -> None:
        self.prepare = prepare
        self.hosts: List[Host] = list(hosts)
        self.jobs: List[JobRun] = []
        self.fill = fill.lower()
        self.recover = recover or {}
        self.terminate = terminate or {}
        self.kill_after = kill_after
        self.wakeup = wakeup or threading.Event()  # set when a process ends: step again

    # -- driving -----------------------------------------------------------------------------

    def step(self) -> float:
        """Watch what runs, start what may start; the seconds until a deadline (a wall
        clock, a trigger) needs another step, if nothing wakes the scheduler before. The
        caller clears ``wakeup`` before it steps."""
        for host in self.hosts:
            for run in list(host.running):
                self._watch(run)
        self._start_ready()
        return self._next_due()

    def wake(self) -> None:
        self.wakeup.set()

    def run_job(self, job: JobRun, stop: threading.Event) -> List[TaskRun]:
        """local-batch: until every task of ``job`` is final or none can run any more;
        ``stop`` terminates the job (its tasks get SIGTERM)."""
        while True:
            if stop.is_set() and job.state == "active":
                self.terminate_job(job, "stopped: local-batch got a signal")
            self.wakeup.clear()
            due = self.step()
            if not any(h.running for h in self.hosts) and not self._startable(job):
                break
            self.wakeup.wait(min(due, 0.25))  # signals only set ``stop``: look again soon
        self._settle(job)
        return job.runs

    def _next_due(self) -> float:
        due = IDLE
        now = time.monotonic()
        for host in self.hosts:
            for run in host.running:
                attempt = run.current
                if attempt is None:
                    continue
                if run.task.max_wall_clock is not None:
                    due = min(due, run.task.max_wall_clock - attempt.elapsed())
                if run.terminating_since is not None:
                    due = min(due, run.terminating_since + self.kill_after - now)
                for trigger in (self.recover.get(run.task.id.lower()),
                                self.terminate.get(run.task.id.lower())):
                    if trigger is not None and not trigger.used:
                        due = min(due, POLL if trigger.after is None else
                                  trigger.after - attempt.elapsed())
        return max(due, 0.0)

    # -- starting ------------------------------------------------------------------------------

    def _startable(self, job: JobRun) -> bool:
        """A pending task that may still start (local-batch refused cycles and oversized
        tasks before the run, so one that waits waits on another that can run)."""
        if job.state != "active":
            return False
        return any(r.state == "pending" and self.deps(job, r) != "block" for r in job.pending)

    def _start_ready(self) -> None:
        hosts = [h for h in self.hosts if h.usable and h.accepting]
        if not hosts:
            return
        for job in sorted(self.jobs, key=lambda j: -j.job.priority):
            if job.state == "active" and not self._fill_from(job, hosts):
                return  # every slot is taken

    def _fill_from(self, job: JobRun, hosts: List[Host]) -> bool:
        """Start the job's ready tasks; False once no slot is left. Each pending task is
        looked at once per pass at most, and a pass that finds no free slot stops at once:
        a job's 10,000 pending tasks cost nothing while its slots are busy."""
        limit = job.job.max_parallel_tasks
        running = len(job.running()) if limit >= 0 else 0
        held: List[TaskRun] = []
        pending = job.pending
        full = False
        while pending:
            if not any(h.free() > 0 for h in hosts):
                full = True
                break
            run = pending.popleft()
            if run.state != "pending":
                continue  # started, completed or deleted since it was queued
            deps = self.deps(job, run)
            host = self._pick(hosts, run.task.required_slots) if deps == "ready" else None
            if deps == "block":
                self._block(run)
            elif host is not None and (limit < 0 or running < limit):
                self._start(job, run, host)
                running += 1
            else:
                held.append(run)
        pending.extendleft(reversed(held))
        return not full

    def _pick(self, hosts: List[Host], slots: int) -> Optional[Host]:
        fits = [h for h in hosts if h.free() >= slots]
        if not fits:
            return None
        if self.fill == "pack":
            return fits[0]
        return max(fits, key=lambda h: h.free())  # the first of the emptiest

    def deps(self, job: JobRun, run: TaskRun) -> str:
        """``ready``, ``wait`` or ``block``, from the states of its dependencies."""
        keys = run.dep_keys
        index = run.dep_cursor
        while index < len(keys):
            dep = job.find(keys[index])
            if dep is None or dep.state not in FINAL or dep.state == "not_run":
                run.dep_cursor = index
                return "wait"  # not there yet, not ended, or never run (a disabled job)
            if dep.state != "succeeded" and not (dep.state in COMPLETED and
                                                 dep.dependency_action == "satisfy"):
                run.dep_cursor, run.blocked_by = index, dep.task.id
                return "block"
            index += 1
        run.dep_cursor = index
        return "ready"

    def _block(self, run: TaskRun) -> None:
        run.failure = BLOCKED
        run.set_state("blocked")

    def _start(self, job: JobRun, run: TaskRun, host: Host) -> None:
        run.attempts += 1
        run.host = host
        run.terminating_since = None
        host.running.append(run)
        run.set_state("running")
        try:
            folder, env = self.prepare(job, run, host)
        except StartError as e:
            run.started_at = time.time()
            self._complete(run, None, "failed", str(e), "start_error")
            return
        run.current = Attempt(run.task.argv, folder, env, run.attempts, on_exit=self.wake)
        run.started_at = run.current.started_at

    # -- watching --------------------------------------------------------------------------------

    def _watch(self, run: TaskRun) -> None:
        attempt = run.current
        if attempt is None:
            return
        if not attempt.finished:
            self._interventions(run, attempt)
            return
        if attempt.error:  # the program could not start: a pre-processing error
            self._complete(run, None, "failed", attempt.error, "start_error")
            return
        code = attempt.poll()
        run.duration_s += attempt.elapsed()
        if run.terminating_since is not None:
            self._complete(run, code, "terminated", "terminated (SIGTERM)", "terminated")
        elif code == 0:
            self._complete(run, 0, "succeeded", None, "exit")
        elif run.task.max_retries < 0 or run.retries < run.task.max_retries:
            run.retries += 1  # Batch's retry, in the same task folder
            run.retried_at = time.time()
            self._back_to_queue(run)
        else:
            self._complete(run, code, "failed", "exit %s" % code, "exit")

    def _interventions(self, run: TaskRun, attempt: Attempt) -> None:
        wall = run.task.max_wall_clock
        key = run.task.id.lower()
        if wall is not None and attempt.elapsed() >= wall:
            code = attempt.kill()
            run.duration_s += attempt.elapsed()
            self._complete(run, code, "timed_out", "killed (SIGKILL) past its maxWallClockTime "
                           "%s" % run.task.max_wall_clock_text, "timeout")
        elif key in self.recover and self.recover[key].fired(attempt):
            self.requeue(run, None)  # as a node failure: Batch requeues the task
        elif key in self.terminate and self.terminate[key].fired(attempt):
            self._terminate(run)
        elif run.terminating_since is not None and \
                time.monotonic() - run.terminating_since > self.kill_after:
            attempt.signal(signal.SIGKILL)

    def _release(self, run: TaskRun) -> None:
        if run.host is not None and run in run.host.running:
            run.host.running.remove(run)
        run.current = None

    def _back_to_queue(self, run: TaskRun) -> None:
        """Pending again, ahead of the tasks that never ran."""
        self._release(run)
        run.set_state("pending")
        job = self._job_of(run)
        if job is not None:
            job.pending.appendleft(run)

    def _job_of(self, run: TaskRun) -> Optional[JobRun]:
        for job in self.jobs:
            if job.by_id.get(run.task.id.lower()) is run:
                return job
        return None

    def _complete(self, run: TaskRun, code: Optional[int], state: str,
                  failure: Optional[str], outcome: str) -> None:
        self._release(run)
        run.exit_code, run.failure, run.outcome = code, failure, outcome
        run.ended_at = time.time()
        job_action, run.dependency_action = exit_options(run.task.exit_conditions, code)
        run.set_state(state)
        job = self._job_of(run)
        if job is not None:
            job.completions += 1
        if job is None or state == "succeeded" or \
                job.job.on_task_failure != "performexitoptionsjobaction":
            return
        if job_action == "disable":
            self.disable_job(job, "requeue", "disabled by task %s (exit %s)" % (run.task.id, code))
        elif job_action == "terminate":
            self.terminate_job(job, "terminated by task %s (exit %s)" % (run.task.id, code),
                               "TaskFailed")

    # -- what users and nodes do -------------------------------------------------------------------

    def requeue(self, run: TaskRun, why: Optional[str]) -> None:
        """Kill a running task and queue it again (a lost node, a disabled job): not a retry."""
        if run.current is not None:
            run.current.kill()
            run.duration_s += run.current.elapsed()
        run.requeues += 1
        run.requeued_at = time.time()
        if why:
            run.failure = why
        self._back_to_queue(run)

    def _terminate(self, run: TaskRun) -> None:
        if run.current is not None and run.terminating_since is None:
            run.terminating_since = time.monotonic()
            run.current.signal(signal.SIGTERM)

    def disable_job(self, job: JobRun, how: str, why: str) -> None:
        """No task of the job starts any more; what runs is requeued (``requeue``), ended
        (``terminate``) or left to finish (``wait``)."""
        job.state, job.why = "disabled", why
        for run in job.running():
            if how == "requeue":
                self.requeue(run, "requeued: the job was %s" % why)
            elif how == "terminate":
                self._terminate(run)

    def enable_job(self, job: JobRun) -> None:
        job.state, job.why = "active", ""
        self.wake()

    def terminate_job(self, job: JobRun, why: str, reason: str = "UserTerminate") -> None:
        """No task starts any more; what runs gets SIGTERM (then SIGKILL)."""
        job.state, job.why, job.reason = "terminated", why, reason
        for run in job.running():
            self._terminate(run)

    def terminate_task(self, run: TaskRun) -> None:
        """End a task: SIGTERM to a running one; one that never ran completes at once."""
        if run.state == "running":
            self._terminate(run)
        elif run.state in ("pending", "blocked"):
            run.ended_at = time.time()
            run.failure, run.outcome = "terminated before it ran", "terminated"
            run.set_state("terminated")

    def reactivate(self, job: JobRun, run: TaskRun) -> None:
        """A failed task becomes pending again, with its retries counted afresh; the tasks
        it blocked wait for it again."""
        run.retries, run.exit_code, run.failure, run.outcome = 0, None, None, None
        run.dependency_action = None
        run.set_state("pending")
        job.pending.appendleft(run)
        for other in job.runs:
            other.dep_cursor = 0
            if other.state == "blocked":
                other.failure = None
                other.set_state("pending")
                job.pending.append(other)
        self.wake()

    def delete_task(self, job: JobRun, run: TaskRun) -> None:
        if run.current is not None:
            run.current.kill()
        self._release(run)
        job.remove(run)

    def lose_host(self, host: Host, why: str) -> None:
        """The node is gone (preempted, removed): what ran there runs again elsewhere."""
        host.usable = False
        for run in list(host.running):
            self.requeue(run, why)
        if host in self.hosts:
            self.hosts.remove(host)

    def end_running_on(self, host: Host) -> None:
        """SIGTERM every task on the host (a node removed with ``terminate``)."""
        for run in list(host.running):
            self._terminate(run)

    # -- the end of a local-batch run ----------------------------------------------------------

    def _settle(self, job: JobRun) -> None:
        for run in job.runs:
            if run.state == "pending":
                if self.deps(job, run) == "block":
                    self._block(run)
                else:
                    run.failure = run.failure or ("the job was %s" % job.why
                                                  if job.state != "active" else
                                                  "its dependencies never completed")
                    run.set_state("not_run")


def task_number(task_id: str) -> Optional[int]:
    return int(task_id) if task_id.isdigit() else None


def _dep_keys(task: Task) -> List[DepKey]:
    keys: List[DepKey] = [t.lower() for t in task.depends_on]
    for start, end in task.depends_ranges:
        keys.extend(range(start, end + 1))
    return keys
