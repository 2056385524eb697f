"""``python -m worker deploy``: from a spec and a package to a running job, in one command.

In order, each step idempotent so that a deploy interrupted anywhere and run again finishes
the job without duplicates: the application package version (``packages``), the pool
(``pools``), the fan-out's items file in the lake (``worker.jobfiles``), the job (``jobs``),
its tasks (``tasks``), then the job told to end when its tasks have. ``--dry-run`` reads what
is there and prints what it would do, changing nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, Any, Dict, List, Optional

from ...errors import OK
from ..errors import ConflictError, SpecError
from .options import ACCOUNT_HELP, add_account_options, load_spec, run_command

EPILOG = """examples:
  python -m worker deploy --spec examples/batch.toml --package examples.zip
  python -m worker deploy --package examples.zip --set job.id=sales-2024-02 \\
      --set 'tasks.items={range=["2024-02-01", "2024-02-29"]}'
  python -m worker deploy --package examples.zip --dry-run     # what it would do
  python -m worker deploy --job-only --set job.id=sales-2024-03   # pool and package as they are
  set -a; . ./.emulators.env; set +a; python -m worker deploy ...  # the local Batch service

what it does, each step skipped when already done (run it again after an interruption):
  1. application package version: uploaded and activated (skipped when that version has the
     same bytes; refused when it has others); without --package it must exist
  2. pool: created from `spec pool`'s resource, or its start task, packages and scale updated
     (another vm_size, image, task_slots, fill or identity: an error naming the key)
  3. the fan-out's items file in the lake (.worker-jobs/JOB/items.json), for the merge task
  4. job: created (its pool, variables, dependencies), or checked when it exists
  5. tasks: added in collections of at most 100 (and under 1 MB); the tasks already there
     with the same definition count as added; a task id with another definition is an error
  6. the job set to end once all its tasks have completed

""" + ACCOUNT_HELP + """
  lake: the items file goes to [job] lake_url (the lake the job gets), else WORKER_LAKE_URL;
    a fan-out over {lake = ...} lists WORKER_LAKE_URL

exit codes:
  0 deployed (or nothing left to do), 2 a bad spec or option, a missing role, a wrong account,
  a quota, an application that does not exist, a conflict with what is there, tasks Batch
  refused; 3 the service kept failing (run it again); 30, 31 as for spec"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--package", metavar="ZIP",
                        help="the application package to upload (its manifest names the app "
                             "and version); without it, that version must be in the account")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="set or replace a spec key")
    parser.add_argument("--dry-run", action="store_true",
                        help="read what is there and print what deploy would do; change "
                             "nothing")
    parser.add_argument("--job-only", action="store_true",
                        help="leave the package and the pool as they are (no account-plane "
                             "call): the items file, the job and its tasks only")
    add_account_options(parser)


def run(args: argparse.Namespace) -> int:
    return run_command("deploy", lambda: Deploy(args, sys.stdout).run())


class Deploy:
    """One deploy: the documents from the spec, then the steps."""

    def __init__(self, args: argparse.Namespace, out: IO[str],
                 environ: Optional[Dict[str, str]] = None) -> None:
        self.args, self.out = args, out
        self.environ = dict(os.environ if environ is None else environ)
        self.verb = "would " if args.dry_run else ""

    def run(self) -> int:
        from .account import Clients, resolve

        self.load()
        self.clients = Clients(resolve(self.spec, self.args.account_url, self.args.shared_key,
                                       self.environ), self.environ)
        if self.clients.target.account and not self.spec.get("pool", "account"):
            self.spec.data.setdefault("pool", {})["account"] = self.clients.target.account
        documents = self.documents()
        try:
            self.steps(documents)
        finally:
            self.clients.close()
        return OK

    # -- the documents ---------------------------------------------------------------------

    def load(self) -> None:
        from ..spec import read_manifest

        manifest = read_manifest(Path(self.args.package)) if self.args.package else None
        self.spec = load_spec(self.args, self.args.overrides, manifest)
        if manifest is not None:  # the zip uploaded is the version the pool will reference
            named = (self.spec.get("package", "app"), self.spec.get("package", "version"))
            if named != (manifest["name"], manifest["version"]):
                raise SpecError("--package %s is %s %s, but the spec names [package] app %s "
                                "version %s: leave [package] out of the spec, or pass the "
                                "package it names" % (self.args.package, manifest["name"],
                                                      manifest["version"], *named))

    def documents(self) -> Dict[str, Any]:
        from ..documents import (
            items_document,
            job_document,
            package_of,
            pool_template,
            task_documents,
        )
        from ..fanout import resolve_items

        spec = self.spec
        items = resolve_items(spec.require("tasks", "items"), self.environ)
        job = job_document(spec)
        documents: Dict[str, Any] = {"job": job, "tasks": task_documents(spec, items),
                                     "package": package_of(spec), "items": len(items)}
        if not self.args.job_only:
            documents["pool"] = pool_template(spec)
        if spec.has("merge"):
            documents["items_file"] = items_document(job["id"], spec.get("tasks", "first_id"),
                                                     items)
        return documents

    # -- the steps -----------------------------------------------------------------------

    def steps(self, documents: Dict[str, Any]) -> None:
        target = self.clients.target
        self.say("deploy%s: job %s on pool %s of Batch account %s" % (
            " --dry-run" if self.args.dry_run else "", documents["job"]["id"],
            documents["job"]["poolInfo"]["poolId"], target.account or target.url or "?"))
        if not self.args.job_only:
            self.package(*documents["package"])
            self.pool(documents["pool"], documents["package"][0])
        if "items_file" in documents:
            self.items_file(documents["items_file"])
        self.job_and_tasks(documents["job"], documents["tasks"])
        counts = self.clients.requests
        self.line("requests", "%d to the Batch account, %d to its account plane, %d for the "
                  "package upload%s" % (counts["batch"], counts["account"], counts["upload"],
                                        ", %d reading the package there" % counts["compare"]
                                        if counts["compare"] else ""))
        if not self.args.dry_run:
            self.say("watch it: python -m worker status %s --watch" % documents["job"]["id"])

    def package(self, app: str, version: str) -> None:
        from .packages import ensure_package
        from .progress import Bar

        archive = Path(self.args.package) if self.args.package else None
        size = archive.stat().st_size if archive is not None else 0
        with Bar("uploading %s" % (archive.name if archive else ""), size, "B",
                 bytes_=True) as bar:
            done = ensure_package(self.clients, app, version, archive, self.args.dry_run,
                                  bar.advance)
        self.line("package", "%s %s: %s" % (app, version, done))

    def pool(self, template: Dict[str, Any], app: str) -> None:
        from .pools import ensure_pool, pool_body

        pool_id, body = pool_body(template, self.clients, app)
        self.line("pool", "%s: %s" % (pool_id, ensure_pool(self.clients, pool_id, body,
                                                           self.args.dry_run)))

    def items_file(self, document: Dict[str, Any]) -> None:
        from ...jobfiles import items_file

        url = self.spec.get("job", "lake_url") or self.environ.get("WORKER_LAKE_URL")
        path = items_file(document["job_id"])
        if not url:
            raise SpecError("the merge task reads the items from the lake, but the spec has no "
                            "[job] lake_url and WORKER_LAKE_URL is not set: set one")
        if not self.args.dry_run:
            _put(url, path, (json.dumps(document, indent=2) + "\n").encode("utf-8"),
                 self.environ)
        self.line("items", "%s in %s: %s%d item(s)" % (path, url, self.verb + "write " if
                                                       self.verb else "written, ",
                                                       len(document["items"])))

    def job_and_tasks(self, job: Dict[str, Any], tasks: List[Dict[str, Any]]) -> None:
        from .jobs import ensure_job, finish_job
        from .progress import Bar
        from .tasks import TaskAdder

        batch, where = self.clients.batch, self.clients.target.where()
        state = ensure_job(batch, job, where, self.args.dry_run)
        made = "would create it" if self.args.dry_run else "created"
        self.line("job", "%s: %s" % (job["id"], made if state.created
                                     else "there (%s)" % state.state))
        before = self.clients.requests["batch"]
        with Bar("adding tasks", len(tasks), "tasks") as bar:
            adder = TaskAdder(batch, job["id"], where, progress=bar.advance)
            if state.finished or self.args.dry_run:
                there = set() if state.created else adder.ids()  # no job: no tasks yet
                missing = [t for t in tasks if t["id"].lower() not in there]
                if state.finished and missing:
                    raise ConflictError(
                        "job %s has %s and Batch adds no tasks to it, but %d of the spec's %d "
                        "tasks are not in it: deploy them as a new job (--set job.id=...)"
                        % (job["id"], state.state, len(missing), len(tasks)))
                if self.args.dry_run:
                    self.line("tasks", "%d: would add %d, %d there" % (
                        len(tasks), len(missing), len(tasks) - len(missing)))
                    return
            report = adder.add(tasks, scan=not state.created)
        report.check(job["id"])
        self.line("tasks", "%d: %d added, %d already there (%d requests)" % (
            len(tasks), report.added, report.present,
            self.clients.requests["batch"] - before))
        if not state.ends_itself and not state.finished:
            finish_job(batch, job["id"], where)

    # -- output ----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def line(self, what: str, text: str) -> None:
        self.say("  %-8s %s" % (what, text))


def _put(url: str, path: str, data: bytes, environ: Dict[str, str]) -> None:
    """Write one file to the lake at ``url`` (staged and committed, as ``lake put`` does)."""
    from ...config import Config
    from ...lake import Lake, open_store

    config = Config.from_env(environ)
    lake = Lake(open_store(url, config=config), "deploy/items",
                concurrency=config.transfer_concurrency)
    try:
        lake.write_bytes(path, data)
        lake.commit()
    finally:
        lake.close()
