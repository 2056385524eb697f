"""``python -m worker local-batch``: run a job's documents on this machine as one Batch node
would, through the real package, launcher and ``python -m worker``. A local test runner
for a job before it goes to a pool, never a scheduler for production work.

The documents are read and checked before anything runs (a bad one is one line with its
exit code); then the node's folders are made, the packages extracted, the start task run
(twice with ``--reboot``), the emulators started (``--emulators``) and the tasks run; the
run ends with a table on stdout and a JSON report, and exits 0 only when every task
succeeded.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ...errors import OK, WorkerError
from ..errors import SpecError, StartTaskFailed, TaskFailed

DEFAULT_ROOT = ".worker/local-batch"

_EPILOG = """examples:
  python -m worker local-batch --package examples.zip --specs specs/ --emulators \\
      --lake-dir examples/data/lake --secrets examples/secrets.json --reboot
  python -m worker local-batch --package app.zip --pool pool.json --job job.json \\
      --tasks tasks-*.json --env WORKER_LAKE_URL=file:///tmp/lake

environment: none of its own; each task gets what Batch sets (AZ_BATCH_*), the pool's,
  job's and task's environment settings, --env, and with --emulators the emulators'
  (WORKER_LAKE_URL, WORKER_VAULT_URL, AZURE_CLIENT_ID, ..., REQUESTS_CA_BUNDLE)

exit codes:
  0 every task succeeded, 2 a bad option or document, 31 an id Batch would refuse,
  32 a dependency cycle, 33 a dependency on a missing task, 34 a task failed, was blocked
  or never ran, 35 the start task failed, 130/143 stopped by SIGINT/SIGTERM"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    add = parser.add_argument
    add("--package", action="append", default=[], metavar="ZIP",
        help="an application package the documents reference (repeatable)")
    add("--specs", metavar="DIR", help="a folder as `spec all` writes it: pool.json, "
        "job.json, tasks-*.json, lake/")
    add("--pool", metavar="FILE", help="the pool (ARM template); default DIR/pool.json")
    add("--job", metavar="FILE", help="the job; default DIR/job.json")
    add("--tasks", nargs="+", metavar="FILE", help="task files; default DIR/tasks-*.json")
    add("--root", default=DEFAULT_ROOT, metavar="DIR",
        help="the node's root folder, kept across runs (default %s)" % DEFAULT_ROOT)
    add("--emulators", action="store_true",
        help="run the lake, Key Vault and identity emulators for the tasks")
    add("--lake-dir", action="append", default=[], metavar="DIR",
        help="with --emulators: files the lake starts with (repeatable; DIR/lake of "
             "--specs is added)")
    add("--secrets", metavar="FILE", help="with --emulators: a JSON object of secrets")
    add("--no-identity-limits", action="store_true",
        help="with --emulators: lift Azure's limits on the node's managed-identity endpoint "
             "(20 token requests a second, 5 at once)")
    add("--env", action="append", default=[], metavar="NAME=VALUE",
        help="a variable for every task, over all others (repeatable)")
    add("--reboot", action="store_true",
        help="run the start task a second time, as a reboot does (a no-op by its stamp)")
    add("--recover", action="append", default=[], metavar="TASK=WHEN",
        help="kill TASK at WHEN (seconds, or stderr:TEXT) as a node failure does, then run "
             "it again")
    add("--terminate", action="append", default=[], metavar="TASK=WHEN",
        help="send TASK SIGTERM at WHEN (seconds, or stderr:TEXT)")
    add("--report", metavar="FILE", help="the JSON report (default ROOT/report.json)")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except WorkerError as e:
        print("local-batch: error: %s" % e, file=sys.stderr)
        return e.exit_code


def _run(args: argparse.Namespace) -> int:
    from .documents import check_job, load_job, load_pool, load_tasks
    from .node import LocalNode, index_packages
    from .process import triggers

    pool_path, job_path, task_paths, lake_dirs = _documents(args)
    pool, job = load_pool(pool_path), load_job(job_path)
    tasks = load_tasks(task_paths)
    check_job(pool, job, tasks)
    recover = _triggers(triggers(args.recover, "--recover"), tasks)
    terminate = _triggers(triggers(args.terminate, "--terminate"), tasks)
    extra = dict(_pair(text) for text in args.env)
    node = LocalNode(Path(args.root), pool.account, pool.id,
                     index_packages([Path(p) for p in args.package]))
    for ref in list(pool.packages) + [r for t in tasks for r in t.packages]:
        node.find(ref)  # every reference has its zip, before anything changes
    if not args.emulators and (args.lake_dir or args.secrets):
        raise SpecError("--lake-dir and --secrets seed the emulators: add --emulators")
    plan = _Plan(node, pool, job, tasks, extra, recover, terminate)
    return plan.execute(args, lake_dirs)


class _Plan:
    """One checked run: node, documents and options."""

    def __init__(self, node, pool, job, tasks, extra, recover, terminate) -> None:
        self.node, self.pool, self.job, self.tasks = node, pool, job, tasks
        self.extra, self.recover, self.terminate = extra, recover, terminate
        self.emulator_env: Dict[str, str] = {}
        self.task_packages: Dict[str, Dict[str, str]] = {}

    def execute(self, args: argparse.Namespace, lake_dirs: List[Path]) -> int:
        from .emulators import LocalEmulators, forget_tokens

        self.node.prepare(self.job.id)
        self.node.variables.update(self.node.install(self.pool.packages))
        self.task_packages = {t.id: self.node.install(t.packages) for t in self.tasks}
        stop = threading.Event()
        previous = _catch_signals(stop)
        emulators = None
        try:
            if args.emulators:
                from .node import NODE_ID

                emulators = LocalEmulators(self.node.root / "emulators", lake_dirs,
                                           Path(args.secrets) if args.secrets else None,
                                           NODE_ID, limits=not args.no_identity_limits)
                forget_tokens(self.node.root)
                self.emulator_env = emulators.env
            boot, runs, job_state = self._run_node(args.reboot, stop)
        finally:
            if emulators is not None:
                emulators.stop()
            _restore_signals(previous)
        return self._finish(args, boot, runs, job_state, stop)

    def _run_node(self, reboot: bool, stop: threading.Event):
        from .node import NODE_ID
        from .scheduler import Host, JobRun, Scheduler, TaskRun
        from .starttask import Boot

        boot = None
        if self.pool.start_task is not None:
            task = self.pool.start_task
            env = self.node.start_task_environment(os.environ, task.environment)
            boot = Boot(self.node, task, env, reboot, stop)
            boot.start()
            if boot.wait_for_success and boot.failed:
                why = "the start task failed, so the node is unusable (StartTaskFailed)"
                return boot, [TaskRun(t, state="not_run", failure=why) for t in self.tasks], \
                    "not started: the start task failed"
        scheduler = Scheduler(self._prepare, [Host(NODE_ID, self.pool.slots)],
                              recover=self.recover, terminate=self.terminate)
        job = JobRun(self.job, self.tasks)
        scheduler.jobs.append(job)
        runs = scheduler.run_job(job, stop)
        if boot is not None:
            boot.join()
        return boot, runs, job.state_text

    def _prepare(self, job, run, host) -> Tuple[Path, Dict[str, str]]:
        return self._folder(run.task), self._environment(run.task)

    def _folder(self, task) -> Path:
        return self.node.task_folder(self.job.id, task.id)

    def _environment(self, task) -> Dict[str, str]:
        layers = [self.task_packages.get(task.id, {}), self.job.environment, task.environment,
                  self.emulator_env, self.extra]
        return self.node.task_environment(os.environ, self.job.id, task.id, layers)

    def _finish(self, args, boot, runs, job_state: str, stop: threading.Event) -> int:
        from .report import failure_reasons, report, table, write_report

        start_runs = boot.runs if boot is not None else []
        code = OK
        if boot is not None and boot.failed:
            code = StartTaskFailed.exit_code
        elif any(r.state != "succeeded" for r in runs):
            code = TaskFailed.exit_code
        if stop.is_set():
            code = _STOPPED.get(_caught[0] if _caught else signal.SIGTERM, 143)
        path = Path(args.report) if args.report else self.node.root / "report.json"
        reasons = failure_reasons(runs, self._folder, self._hint(args, runs))
        write_report(path, report(self.job, self.pool, self.node.root, job_state, start_runs,
                                  runs, self._folder, code, reasons))
        sys.stdout.write(table(start_runs, runs, reasons))
        done = sum(r.state == "succeeded" for r in runs)
        print("local-batch: job %s: %d of %d tasks succeeded%s; report %s"
              % (self.job.id, done, len(runs), "" if job_state == "active" else
                 " (job %s)" % job_state, path))
        return code


    def _hint(self, args, runs) -> Optional[str]:
        """When a task failed on a node whose tasks reach no local lake or vault (no
        --emulators, no --env for them): how to give them one."""
        failed = [r for r in runs if r.state in ("failed", "timed_out")]
        if args.emulators or not failed:
            return None
        env = self._environment(failed[0].task)
        lake, vault = env.get("WORKER_LAKE_URL", ""), env.get("WORKER_VAULT_URL", "")
        if lake and _local(lake) and (not vault or _local(vault)):
            return None
        return ("this machine gave the tasks no lake or vault of its own: add --emulators "
                "(a local lake, vault and identity), or --env WORKER_LAKE_URL=... and --env "
                "WORKER_VAULT_URL=...")


def _local(url: str) -> bool:
    """A lake or vault URL this machine serves (a folder, a loopback emulator)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "file" or parts.hostname in ("127.0.0.1", "localhost", "::1")


_STOPPED = {signal.SIGINT: 130, signal.SIGTERM: 143}
_caught: List[int] = []


def _catch_signals(stop: threading.Event):
    def handler(signum, _frame):
        _caught.append(signum)
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in _STOPPED}


def _restore_signals(previous) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)


def _documents(args: argparse.Namespace) -> Tuple[Path, Path, List[Path], List[Path]]:
    folder = Path(args.specs) if args.specs else None
    pool = _one(args.pool, folder, "pool.json", "--pool")
    job = _one(args.job, folder, "job.json", "--job")
    if args.tasks:
        tasks = [Path(p) for p in args.tasks]
    elif folder is not None:
        tasks = sorted(folder.glob("tasks-*.json"))
    else:
        raise SpecError("no task files: pass --specs DIR or --tasks FILE...")
    lake_dirs = [Path(p) for p in args.lake_dir]
    if folder is not None and (folder / "lake").is_dir():
        lake_dirs.append(folder / "lake")
    return pool, job, tasks, lake_dirs


def _one(option: Optional[str], folder: Optional[Path], name: str, flag: str) -> Path:
    if option:
        return Path(option)
    if folder is None:
        raise SpecError("no %s document: pass --specs DIR or %s FILE" % (name[:-5], flag))
    return folder / name


def _triggers(found: Dict, tasks: Sequence) -> Dict:
    ids = {t.id.lower() for t in tasks}
    for key, trigger in found.items():
        if key not in ids:
            raise SpecError("%s %s=...: the job has no task %r" % (trigger.option, trigger.task,
                                                                   trigger.task))
    return found


def _pair(text: str) -> Tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise SpecError("--env %r: expected NAME=VALUE" % text)
    return name, value
