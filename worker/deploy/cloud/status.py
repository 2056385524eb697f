"""``python -m worker status JOB [--watch]``: a job's state, its tasks by state and why each
failed task failed.

One refresh asks the service for the job (its state), its task counts (one call, whatever
the number of tasks), the running tasks (their requeue counts), and lists the failed tasks
only when their count changed; each failed task's reason is read once (the last line of its
``stderr.txt``, the harness's one-line failure; from the job's folder in the lake when its
node is gone) and kept. When nothing runs, the pool is read instead, to say why (no nodes, a
resize error such as a quota).

Batch cannot filter tasks on ``executionInfo/requeueCount`` ("OData filters in Azure Batch"
lists what a task list filters on), so the requeued tasks are counted from what is listed
anyway: the running tasks (as many as the pool's slots) and the failed ones while the job
runs, and every task once, when the job's tasks have ended (one request per 1,000 tasks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Dict, List, Optional, Set

from ...errors import OK
from ...logs import failure_of
from ..commandline import task_exit_meaning
from ..errors import STATUS_FAILED, STATUS_RUNNING
from .options import ACCOUNT_HELP, add_account_options, load_spec, run_command

EPILOG = """examples:
  python -m worker status sales-daily
  python -m worker status sales-daily --watch            # a progress bar until it ends
  python -m worker status sales-daily --watch --interval 30

""" + ACCOUNT_HELP + """
  lake: the one the job's tasks wrote to (the job's own WORKER_LAKE_URL, which deploy set
    from [job] lake_url), else WORKER_LAKE_URL, else [job] lake_url: the failure of a task
    whose node is gone is read from the job's folder there (.worker-jobs/JOB/results/TASK.json)

exit codes:
  0 every task succeeded; 40 the tasks ended and some failed (or wait on failed ones: blocked);
  41 still running (without --watch); 2 no such job, a missing role, a wrong account;
  3 the service kept failing"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("job", metavar="JOB", help="the job's id")
    parser.add_argument("--watch", action="store_true",
                        help="refresh with a progress bar until the job's tasks have ended")
    parser.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                        help="seconds between refreshes with --watch (default 10)")
    add_account_options(parser)


def run(args: argparse.Namespace) -> int:
    return run_command("status", lambda: _status(args, sys.stdout))


def _status(args: argparse.Namespace, out: IO[str]) -> int:
    from .account import Clients, resolve

    spec = load_spec(args)
    clients = Clients(resolve(spec, args.account_url, args.shared_key))
    try:
        view = JobView(clients, args.job, spec=spec)
        return watch(view, out, args.interval) if args.watch else show(view, out)
    finally:
        clients.close()


@dataclass
class Snapshot:
    """One refresh: the job's state and its tasks' counts."""

    state: str = "active"
    pool_id: str = ""
    active: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    requeued: int = 0  # tasks Batch ran again after a node was lost
    blocked: int = 0
    pool_note: str = ""
    terminate_reason: str = ""

    @property
    def total(self) -> int:
        return self.active + self.running + self.succeeded + self.failed

    @property
    def ended(self) -> bool:
        """Nothing more will happen without a person: the job completed, every task
        completed, every waiting task waits on a failed one, or the job is disabled."""
        return (self.state in ("completed", "terminating") or
                (self.active + self.running == 0 and self.total > 0) or
                (self.running == 0 and self.active == self.blocked) or
                self.state in ("disabled", "disabling"))

    @property
    def exit_code(self) -> int:
        if not self.ended:
            return STATUS_RUNNING
        return STATUS_FAILED if self.failed or self.blocked or self.active else OK


@dataclass
class Failure:
    task_id: str
    item: str
    exit_code: Optional[int]
    reason: str


@dataclass
class JobView:
    """Refreshes of one job, keeping what does not change (the failures' reasons)."""

    clients: Any
    job_id: str
    lake_url: Optional[str] = None  # None: the job's lake (lake.job_lake_url), once read
    spec: Any = None
    failures: Dict[str, Failure] = field(default_factory=dict)
    requeued: Set[str] = field(default_factory=set)  # ids of tasks seen requeued
    _blocked_for: Any = ((None, None), 0)
    _counted_for: Any = None  # the ended snapshot's counts every task was listed for

    def refresh(self) -> Snapshot:
        from .failures import translate

        batch, where = self.clients.batch, self.clients.target.where()
        try:
            job = batch.get_job(self.job_id, select=["id", "state", "poolInfo",
                                                     "executionInfo",
                                                     "commonEnvironmentSettings"])
            counts = batch.get_job_task_counts(self.job_id).task_counts
        except Exception as e:  # the SDK's errors, translated at this boundary
            raise translate(e, "reading job %s" % self.job_id, where,
                            not_found="there is no job %s in account %s: check the id"
                            % (self.job_id, self.clients.target.account or
                               self.clients.target.url)) from None
        if self.lake_url is None:
            from .lake import job_lake_url

            self.lake_url = job_lake_url(job.common_environment_settings, self.spec)
        snap = Snapshot(state=_value(job.state), pool_id=(job.pool_info.pool_id or "")
                        if job.pool_info else "", active=counts.active, running=counts.running,
                        succeeded=counts.succeeded, failed=counts.failed,
                        terminate_reason=(job.execution_info.termination_reason or "")
                        if job.execution_info else "")
        if snap.running:
            self._note_requeues(self.clients.batch.list_tasks(
                self.job_id, filter="state eq 'running'", select=["id", "executionInfo"]))
        if snap.failed != len(self.failures):
            self._read_failures()
        if snap.failed and snap.running == 0 and 0 < snap.active <= 1000:
            key = (snap.failed, snap.active)  # what it depends on: asked again on a change
            if key != self._blocked_for[0]:
                self._blocked_for = (key, self._blocked())
            snap.blocked = self._blocked_for[1]
        if snap.running == 0 and snap.active > snap.blocked and snap.pool_id:
            snap.pool_note = self._pool_note(snap.pool_id)
        if snap.ended and self._counted_for != (snap.total, snap.succeeded, snap.failed):
            self._counted_for = (snap.total, snap.succeeded, snap.failed)
            self.requeued = set()  # every task, once: the exact count
            self._note_requeues(self.clients.batch.list_tasks(
                self.job_id, select=["id", "executionInfo"]))
        snap.requeued = len(self.requeued)
        return snap

    def _note_requeues(self, tasks: Any) -> None:
        """Keep the ids of the listed tasks Batch requeued (a node lost under them)."""
        for task in tasks:
            if task.execution_info is not None and task.execution_info.requeue_count:
                self.requeued.add(task.id)

    def _read_failures(self) -> None:
        tasks = self.clients.batch.list_tasks(
            self.job_id, filter="executionInfo/result eq 'failure'",
            select=["id", "displayName", "executionInfo"])
        found: Set[str] = set()
        tasks = list(tasks)
        self._note_requeues(tasks)
        for task in tasks:
            found.add(task.id)
            if task.id not in self.failures:
                info = task.execution_info
                self.failures[task.id] = Failure(
                    task.id, task.display_name or "", info.exit_code if info else None,
                    self._reason(task))
        for gone in set(self.failures) - found:  # reactivated since
            del self.failures[gone]

    def _reason(self, task: Any) -> str:
        from . import files

        where = self.clients.target.where()
        line = files.last_line(self.clients.batch, self.job_id, task.id, "stderr.txt", where)
        if line:
            return failure_of(line)
        record = self._lake_record(task.id)
        if record and record.get("error"):
            return "%s (from the lake's copy of its result.json)" % record["error"].get(
                "message", "")
        info = task.execution_info
        failure = getattr(info, "failure_info", None) if info else None
        if failure is not None:
            return "%s: %s" % (failure.code, failure.message or "")
        return "no stderr.txt (its node is gone) and no result record in the lake"

    def _lake_record(self, task_id: str) -> Optional[Dict[str, Any]]:
        if not self.lake_url:
            return None
        from ...jobfiles import result_file
        from .lake import read_lake

        data = read_lake(self.lake_url, [result_file(self.job_id, task_id)]).get(
            result_file(self.job_id, task_id))
        try:
            return json.loads(data) if data else None
        except ValueError:
            return None

    def _blocked(self) -> int:
        """How many waiting tasks depend on a failed one (so will not run)."""
        failed = {f.task_id.lower() for f in self.failures.values()}
        numbers = {int(t) for t in failed if t.isdigit()}
        count = 0
        for task in self.clients.batch.list_tasks(self.job_id, filter="state eq 'active'",
                                                  select=["id", "dependsOn"]):
            depends = task.depends_on
            if depends is None:
                continue
            ids = {str(t).lower() for t in depends.task_ids or []}
            ranges = [(r.start, r.end) for r in depends.task_id_ranges or []]
            if ids & failed or any(a <= n <= b for n in numbers for a, b in ranges):
                count += 1
        return count

    def _pool_note(self, pool_id: str) -> str:
        from azure.core.exceptions import HttpResponseError

        try:
            pool = self.clients.batch.get_pool(pool_id, select=[
                "id", "allocationState", "currentDedicatedNodes", "currentLowPriorityNodes",
                "resizeErrors", "state"])
        except HttpResponseError as e:
            if e.status_code == 404:
                return "pool %s does not exist: deploy creates it" % pool_id
            return ""
        nodes = (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0)
        errors = "; ".join("%s: %s" % (e.code, e.message) for e in pool.resize_errors or [])
        note = "pool %s: %d node(s), %s" % (pool_id, nodes, _value(pool.allocation_state))
        return note + ("; resize error %s" % errors if errors else "")


#: The harness's final line starts with what the status line says already.
def _value(enum: Any) -> str:
    return str(getattr(enum, "value", enum) or "").lower()


# -- showing -------------------------------------------------------------------------------


def show(view: JobView, out: IO[str]) -> int:
    snap = view.refresh()
    out.write(report(view, snap))
    return snap.exit_code


def watch(view: JobView, out: IO[str], interval: float) -> int:
    from .progress import Bar

    snap = view.refresh()
    with Bar("job %s" % view.job_id, snap.total, "tasks") as bar:
        shown: Set[str] = set()
        while True:
            bar.total = snap.total
            bar.set(snap.succeeded + snap.failed, "running %d, failed %d" % (snap.running,
                                                                              snap.failed))
            for failure in view.failures.values():
                if failure.task_id not in shown:
                    shown.add(failure.task_id)
                    out.write("task %s failed: %s\n" % (failure.task_id, _why(failure)))
                    out.flush()
            if snap.ended:
                break
            time.sleep(interval)
            snap = view.refresh()
    out.write(report(view, snap))
    return snap.exit_code


def report(view: JobView, snap: Snapshot) -> str:
    lines = ["job %s: %s%s, pool %s" % (view.job_id, snap.state, " (%s)" % snap.terminate_reason
                                        if snap.terminate_reason else "", snap.pool_id or "?"),
             "  tasks %d: %d active, %d running, %d succeeded, %d failed, %d requeued%s" % (
                 snap.total, snap.active, snap.running, snap.succeeded, snap.failed,
                 snap.requeued,
                 ", %d blocked by failed tasks" % snap.blocked if snap.blocked else "")]
    if snap.pool_note:
        lines.append("  " + snap.pool_note)
    if view.failures:
        lines.append("failed tasks:")
        for failure in sorted(view.failures.values(), key=lambda f: _order(f.task_id)):
            lines.append("  %s%s: %s" % (failure.task_id, " (%s)" % failure.item
                                         if failure.item else "", _why(failure)))
    lines.append(_verdict(view.job_id, snap))
    return "\n".join(lines) + "\n"


def _why(failure: Failure) -> str:
    code = failure.exit_code
    meaning = "exit %d (%s)" % (code, task_exit_meaning(code)) if code is not None \
        else "no exit code"
    return "%s: %s" % (meaning, failure.reason)


def _verdict(job_id: str, snap: Snapshot) -> str:
    if snap.exit_code == OK:
        return "every task succeeded"
    if snap.exit_code == STATUS_RUNNING:
        return "still running: python -m worker status %s --watch" % job_id
    if snap.state in ("disabled", "disabling"):
        return ("the job is %s (a task failed with a configuration error, exit 2): fix it, "
                "then python -m worker rerun %s --failed" % (snap.state, job_id))
    return ("some tasks failed: python -m worker logs %s TASK --stderr shows one; fix the "
            "cause, then python -m worker rerun %s --failed" % (job_id, job_id))


def _order(task_id: str) -> List[Any]:
    return [0, int(task_id), ""] if task_id.isdigit() else [1, 0, task_id]
