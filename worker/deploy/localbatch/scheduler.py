"""The job's tasks on the node's slots, as one Batch node runs them.

- A task starts when its dependencies allow it (each one succeeded, or failed with the
  ``dependencyAction`` ``satisfy``; one that failed with ``block`` blocks it for good) and
  its ``requiredSlots`` are free; tasks are taken in the documents' order.
- A non-zero exit is retried in the same task folder up to ``maxTaskRetryCount`` (-1: no
  limit). The final exit code picks the task's ``exitOptions`` (``exitConditions``): the
  ``dependencyAction`` for its dependents, and, when the job says
  ``performexitoptionsjobaction``, the ``jobAction``: ``disable`` requeues the running tasks
  and starts no more, ``terminate`` ends them (SIGTERM) and starts no more.
- A task past its ``maxWallClockTime`` is killed as Batch kills it, SIGKILL to its process
  group, and not retried (state ``timed_out``, exit code -9 as Batch reports on Linux).
- ``--recover TASK=WHEN`` kills a running task at that moment (SIGKILL, as a node failure
  does) and runs it again, not counted as a retry (Batch's requeue); ``--terminate
  TASK=WHEN`` sends it SIGTERM (then SIGKILL after 30 s), and it ends as ``terminated``.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from .documents import Job, Task, exit_options
from .process import Attempt, Trigger

POLL = 0.02
KILL_AFTER = 30.0  # seconds from SIGTERM to SIGKILL
FINAL = ("succeeded", "failed", "timed_out", "terminated", "blocked", "not_run")


@dataclass
class TaskRun:
    """A task's state on the node and what the report says of it."""

    task: Task
    state: str = "pending"  # pending, running, then one of FINAL
    attempts: int = 0
    requeues: int = 0
    exit_code: Optional[int] = None
    failure: Optional[str] = None
    dependency_action: Optional[str] = None
    duration_s: float = 0.0
    current: Optional[Attempt] = None
    terminating_since: Optional[float] = None

    def to_dict(self) -> Dict[str, object]:
        return {"id": self.task.id, "state": self.state, "exit_code": self.exit_code,
                "attempts": self.attempts, "requeues": self.requeues,
                "duration_s": round(self.duration_s, 3), "failure": self.failure,
                "dependency_action": self.dependency_action}


class Scheduler:
    """Runs a job's tasks; ``environment(task)`` gives each task's variables."""

    def __init__(self, job: Job, tasks: List[Task], slots: int,
                 folder: Callable[[Task], object], environment: Callable[[Task], Dict],
                 recover: Dict[str, Trigger], terminate: Dict[str, Trigger]) -> None:
        self.job = job
        self.runs = [TaskRun(t) for t in tasks]
        self.by_id = {r.task.id: r for r in self.runs}
        self.slots = slots
        self.folder = folder
        self.environment = environment
        self.recover = recover
        self.terminate = terminate
        self.job_state = "active"  # or "disabled by ...", "terminated by ..."

    def run(self, stop: threading.Event) -> List[TaskRun]:
        """Until every task is final, or nothing more can run; ``stop`` ends the run
        (the tasks get SIGTERM)."""
        while True:
            for run in self._running():
                self._watch(run)
            if stop.is_set() and self.job_state == "active":
                self._stop_job("stopped: local-batch got a signal", terminate=True)
            if self.job_state == "active":
                self._start_ready()
            if not self._running() and not self._startable():
                break
            time.sleep(POLL)
        self._settle()
        return self.runs

    def _running(self) -> List[TaskRun]:
        return [r for r in self.runs if r.state == "running"]

    def _startable(self) -> bool:
        """A pending task that may still start (cycles and oversized tasks were refused
        before the run, so one that waits waits on another that can run)."""
        if self.job_state != "active":
            return False
        return any(r.state == "pending" and self._deps(r) != "block" for r in self.runs)

    def _start_ready(self) -> None:
        free = self.slots - sum(r.task.required_slots for r in self._running())
        for run in self.runs:
            if run.state != "pending" or run.task.required_slots > free:
                continue
            deps = self._deps(run)
            if deps == "block":
                run.state = "blocked"
                run.failure = "a task it depends on failed with dependencyAction block"
            elif deps == "ready":
                self._start(run)
                free -= run.task.required_slots

    def _deps(self, run: TaskRun) -> str:
        """``ready``, ``wait`` or ``block``, from the states of its dependencies."""
        waiting = False
        for dep_id in run.task.depends_on:
            dep = self.by_id[dep_id]
            if dep.state == "succeeded" or (dep.state in FINAL and
                                            dep.dependency_action == "satisfy"):
                continue
            if dep.state in FINAL:
                return "block"
            waiting = True
        return "wait" if waiting else "ready"

    def _start(self, run: TaskRun) -> None:
        run.attempts += 1
        run.state = "running"
        run.current = Attempt(run.task.argv, self.folder(run.task), self.environment(run.task),
                              run.attempts)
        if run.current.error:  # the program could not start: a pre-processing error
            self._complete(run, None, "failed", run.current.error)

    def _watch(self, run: TaskRun) -> None:
        attempt = run.current
        assert attempt is not None
        code = attempt.poll()
        if code is None and attempt.process is not None:
            self._interventions(run, attempt)
            return
        run.duration_s += attempt.elapsed()
        if run.terminating_since is not None:
            self._complete(run, code, "terminated", "terminated (SIGTERM)")
        elif code == 0:
            self._complete(run, 0, "succeeded", None)
        elif run.task.max_retries < 0 or run.attempts - run.requeues <= run.task.max_retries:
            run.state = "pending"  # Batch's retry, in the same task folder
        else:
            self._complete(run, code, "failed", "exit %s" % code)

    def _interventions(self, run: TaskRun, attempt: Attempt) -> None:
        wall = run.task.max_wall_clock
        key = run.task.id.lower()
        if wall is not None and attempt.elapsed() >= wall:
            code = attempt.kill()
            run.duration_s += attempt.elapsed()
            self._complete(run, code, "timed_out", "killed (SIGKILL) past its maxWallClockTime "
                           "%s" % run.task.max_wall_clock_text)
        elif key in self.recover and self.recover[key].fired(attempt):
            attempt.kill()  # as a node failure: then Batch requeues the task
            run.duration_s += attempt.elapsed()
            run.requeues += 1
            run.state = "pending"
        elif key in self.terminate and self.terminate[key].fired(attempt):
            self._terminate(run)
        elif run.terminating_since is not None and \
                time.monotonic() - run.terminating_since > KILL_AFTER:
            attempt.signal(signal.SIGKILL)

    def _terminate(self, run: TaskRun) -> None:
        if run.current is not None and run.terminating_since is None:
            run.terminating_since = time.monotonic()
            run.current.signal(signal.SIGTERM)

    def _complete(self, run: TaskRun, code: Optional[int], state: str,
                  failure: Optional[str]) -> None:
        run.state, run.exit_code, run.failure = state, code, failure
        job_action, run.dependency_action = exit_options(run.task.exit_conditions, code)
        if state == "succeeded" or self.job.on_task_failure != "performexitoptionsjobaction":
            return
        if job_action == "disable":
            self._stop_job("disabled by task %s (exit %s)" % (run.task.id, code),
                           terminate=False)
        elif job_action == "terminate":
            self._stop_job("terminated by task %s (exit %s)" % (run.task.id, code),
                           terminate=True)

    def _stop_job(self, why: str, terminate: bool) -> None:
        """Disable (requeue what runs: killed, to run when the job is enabled again) or
        terminate (SIGTERM what runs) the job; no task starts after it."""
        self.job_state = why
        for run in self._running():
            if terminate:
                self._terminate(run)
            else:
                assert run.current is not None
                run.current.kill()
                run.duration_s += run.current.elapsed()
                run.state, run.failure = "not_run", "requeued: the job was %s" % why

    def _settle(self) -> None:
        for run in self.runs:
            if run.state == "pending":
                if self._deps(run) == "block":
                    run.state, run.failure = "blocked", ("a task it depends on failed with "
                                                         "dependencyAction block")
                else:
                    run.state = "not_run"
                    run.failure = run.failure or ("the job was %s" % self.job_state
                                                  if self.job_state != "active" else
                                                  "its dependencies never completed")
