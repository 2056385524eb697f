"""``python -m worker rerun JOB --failed [--tasks IDS]``: run failed tasks again, once their
cause is fixed.

For each failed task: the harness's repeated-failure record (``.worker-failure`` in the
task's folder, README "Retries of permanent failures") is deleted from its node, so the
fixed input runs at once rather than being refused as a repeat, then the task is
reactivated (Batch resets its retry count). A job a failure disabled (exit 2 asks Batch to
disable it) is enabled again. Batch reactivates tasks only in a job that has not
completed: a job that ended (``onAllTasksComplete``) takes its failed items as a new job.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any, List, Optional, Tuple

from ...batch import FAILURE_FILE
from ...errors import OK
from ..errors import CloudError, ConflictError
from . import files
from .failures import translate
from .options import ACCOUNT_HELP, add_account_options, load_spec, run_command

EPILOG = """examples:
  python -m worker rerun sales-daily --failed            # every failed task
  python -m worker rerun sales-daily --failed --tasks 3,7
  python -m worker rerun sales-daily --tasks merge       # these tasks (they must have failed)

""" + ACCOUNT_HELP + """

exit codes:
  0 reactivated (or no failed task to rerun); 2 no such job, a job that has completed,
  --tasks naming a task that did not fail, a missing role, a wrong account; 3 the service
  kept failing"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("job", metavar="JOB", help="the job's id")
    parser.add_argument("--failed", action="store_true", help="every task that failed")
    parser.add_argument("--tasks", metavar="IDS",
                        help="only these tasks, comma-separated (each must have failed)")
    add_account_options(parser)


def run(args: argparse.Namespace) -> int:
    if not args.failed and not args.tasks:
        print("rerun: error: say which tasks: --failed (every failed task) and/or --tasks "
              "IDS", file=sys.stderr)
        return 2
    return run_command("rerun", lambda: _rerun(args, sys.stdout))


def _rerun(args: argparse.Namespace, out: IO[str]) -> int:
    from .account import Clients, resolve

    clients = Clients(resolve(load_spec(args), args.account_url, args.shared_key))
    wanted = [t.strip() for t in (args.tasks or "").split(",") if t.strip()] or None
    try:
        done, enabled = rerun(clients, args.job, wanted)
    finally:
        clients.close()
    if done:
        out.write("reactivated %d task(s) of job %s: %s\n" % (len(done), args.job,
                                                              ", ".join(done)))
    if enabled:
        out.write("enabled job %s again\n" % args.job)
    if not done and not enabled:
        out.write("job %s has no failed task to rerun\n" % args.job)
        return OK
    out.write("watch it: python -m worker status %s --watch\n" % args.job)
    return OK


def rerun(clients: Any, job_id: str, wanted: Optional[List[str]] = None
          ) -> Tuple[List[str], bool]:
    """Reactivate the job's failed tasks (or those of ``wanted``), and enable the job when
    it is disabled (also when a rerun that did the rest was interrupted before); the ids
    reactivated and whether the job was enabled."""
    batch, where = clients.batch, clients.target.where()
    state = _job_state(clients, job_id)
    failed = [t.id for t in batch.list_tasks(job_id, filter="executionInfo/result eq 'failure'",
                                             select=["id"])]
    if wanted is not None:
        known = {t.lower(): t for t in failed}
        others = [t for t in wanted if t.lower() not in known]
        if others:
            raise CloudError("task(s) %s of job %s did not fail (or do not exist): rerun "
                             "reactivates failed tasks only; see python -m worker status %s"
                             % (", ".join(others), job_id, job_id))
        failed = [known[t.lower()] for t in wanted]
    if failed and state in ("completed", "terminating", "deleting"):
        raise ConflictError(
            "job %s has %s, and Batch reactivates tasks only in a job that has not: deploy "
            "its failed tasks (%s) as a new job, e.g. --set job.id=%s-rerun --set "
            "'tasks.items={list=[...]}' with their items"
            % (job_id, state, ", ".join(failed[:10]) + (" ..." if len(failed) > 10 else ""),
               job_id))
    for task_id in failed:
        files.delete(batch, job_id, task_id, FAILURE_FILE, where)
        _reactivate(batch, job_id, task_id, where)
    enabled = state in ("disabled", "disabling")
    if enabled:
        _enable(batch, job_id, where)
    return failed, enabled


def _job_state(clients: Any, job_id: str) -> str:
    try:
        job = clients.batch.get_job(job_id, select=["id", "state"])
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "reading job %s" % job_id, clients.target.where(),
                        not_found="there is no job %s in account %s: check the id"
                        % (job_id, clients.target.account or clients.target.url)) from None
    return str(getattr(job.state, "value", job.state) or "").lower()


def _reactivate(batch: Any, job_id: str, task_id: str, where: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    from .failures import service_words

    try:
        batch.reactivate_task(job_id, task_id)
    except HttpResponseError as e:
        if service_words(e)[0] == "TaskNotCompleted" or e.status_code == 409 and \
                "not completed" in service_words(e)[1].lower():
            return  # reactivated already (a rerun run again)
        raise translate(e, "reactivating task %s of job %s" % (task_id, job_id), where) \
            from None
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "reactivating task %s of job %s" % (task_id, job_id), where) \
            from None


def _enable(batch: Any, job_id: str, where: Any) -> None:
    try:
        batch.begin_enable_job(job_id, polling_interval=1).result(timeout=120)
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "enabling job %s" % job_id, where) from None
