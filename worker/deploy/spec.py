"""``python -m worker spec pool|job|tasks|all``: print or write what a user deploys.

``pool`` and ``job`` print one JSON document (or write it to ``--out FILE``); ``tasks`` and
``all`` write a folder: ``tasks-001.json``... (collections of at most 100 tasks, one
``az batch task create --json-file`` each), ``lake/`` (files the job needs in the lake: the
merge task's items file) and, for ``all``, ``pool.json`` and ``job.json``; then they print
what was written and the commands that deploy it. A failure is one line on stderr
(``spec: error: ...``) with its exit code (``worker/deploy/errors.py``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import OK, WorkerError
from .errors import SpecError, ToolError

_EPILOG = """examples:
  python -m worker spec all --spec examples/batch.toml --package examples.zip --out specs/
  python -m worker spec pool --package examples.zip --set pool.nodes=4
  python -m worker spec tasks --package examples.zip --set job.id=sales-2024-02 \\
      --set 'tasks.items={range=["2024-02-01", "2024-02-29"]}' --out specs/

the pool's image: that of the package's Python (its manifest, else [package] python, else 3.8):
  3.8 canonical 0001-com-ubuntu-server-jammy 22_04-lts, node agent batch.node.ubuntu 22.04;
  3.12 canonical ubuntu-24_04-lts server, node agent batch.node.ubuntu 24.04;
  [pool] image = {publisher, offer, sku} (or {id}) with [pool] node_agent overrides it

environment: WORKER_LAKE_URL and your own credential (az login, or AZURE_CLIENT_ID and the
  like, as for `lake`) only for a fan-out over a lake listing ({lake = "..."}); nothing else

exit codes:
  0 written, 2 a malformed spec file or option, 30 a fan-out with no items,
  31 an id Batch would refuse; a lake listing's own codes (2 access, 3 transient)"""

KINDS = ("pool", "job", "tasks", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``spec`` options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("kind", choices=KINDS, help="which documents")
    parser.add_argument("--spec", metavar="FILE",
                        help="the spec file (default: batch.toml here, when there is one)")
    parser.add_argument("--package", metavar="ZIP",
                        help="the application package: its manifest gives the app id and "
                             "version")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="set or replace a spec key")
    parser.add_argument("--out", metavar="PATH",
                        help="pool, job: a file (default stdout); tasks, all: a folder "
                             "(required)")


def run(args: argparse.Namespace) -> int:
    """Make the documents; write or print them; return the exit code."""
    try:
        written = _make(args)
    except WorkerError as e:
        print("spec: error: %s" % e, file=sys.stderr)
        return e.exit_code
    except ImportError as e:  # tomli, on Python < 3.11, comes with the deploy extra
        print("spec: error: %s: install the build tools with pip install "
              "'batch-worker[deploy]'" % e, file=sys.stderr)
        return ToolError.exit_code
    if written is not None:
        sys.stdout.write(written)
    return OK


def _make(args: argparse.Namespace) -> Optional[str]:
    from .documents import job_document, pool_template
    from .specfile import DEFAULT_FILE, load_spec

    path = Path(args.spec) if args.spec else Path(DEFAULT_FILE)
    if not args.spec and not path.is_file():
        path = None
    spec = load_spec(path, args.overrides, read_manifest(Path(args.package))
                     if args.package else None)
    if args.kind in ("pool", "job"):
        document = pool_template(spec) if args.kind == "pool" else job_document(spec)
        return _emit(document, args.out)
    if not args.out:
        raise SpecError("spec %s writes a folder: pass --out DIR" % args.kind)
    return _write_folder(spec, Path(args.out), args.kind == "all", args)


def _write_folder(spec, out: Path, everything: bool, args: Any = None) -> str:
    """Write the folder; the task collections are written one by one as they are made, so
    the memory used does not grow with the number of tasks (only the items' list does)."""
    from .documents import (
        items_document,
        items_file,
        iter_collection_texts,
        iter_task_documents,
        job_document,
        pool_template,
    )
    from .fanout import resolve_items

    documents: Dict[str, Any] = {}
    if everything:
        documents["pool.json"] = pool_template(spec)
        documents["job.json"] = job_document(spec)
    items = resolve_items(spec.require("tasks", "items"))
    job_id = spec.require("job", "id")
    if spec.has("merge"):
        documents["lake/" + items_file(job_id)] = items_document(
            job_id, spec.get("tasks", "first_id"), items)
    collections = iter_collection_texts(iter_task_documents(spec, items))
    first = next(collections)  # a bad id or template fails before anything is written
    for stale in out.glob("tasks-*.json"):  # an earlier run's collections must not linger
        stale.unlink()
    names = []
    for n, texts in enumerate(itertools.chain([first], collections), 1):
        names.append("tasks-%03d.json" % n)  # a task per line
        _write_text(out / names[-1], "[\n" + ",\n".join(texts) + "\n]\n")
    for name, document in documents.items():
        _write(out / name, document)
    return _summary(out, sorted(names + list(documents)), job_id, len(items), spec.has("merge"),
                    spec.get("package", "app", "APP"), spec.get("package", "version", "VERSION"),
                    _deploy_command(args),
                    shlex.quote(args.package) if args is not None and args.package
                    else "PACKAGE.zip")


def _deploy_command(args: Any) -> str:
    """``python -m worker deploy`` with this run's spec file, package and overrides."""
    words = ["python", "-m", "worker", "deploy"]
    if args is not None:
        if args.spec:
            words += ["--spec", args.spec]
        if args.package:
            words += ["--package", args.package]
        for override in args.overrides:
            words += ["--set", override]
    return " ".join(shlex.quote(w) for w in words)


def _summary(out: Path, names: List[str], job_id: str, items: int, merge: bool,
             app: str = "APP", version: str = "VERSION",
             deploy: str = "python -m worker deploy", package: str = "PACKAGE.zip") -> str:
    lines = ["wrote %s/: %d task(s) for %d item(s)%s" % (out, items + merge, items,
                                                        " and the merge task" if merge else "")]
    lines += ["  %s" % name for name in names]
    lines.append("deploy (docs/deploying.md), in one command that a rerun finishes:")
    lines.append("  " + deploy)
    lines.append("or with az, file by file:")
    lines.append("  az batch application package create -g RESOURCE_GROUP -n BATCH_ACCOUNT "
                 "--application-name %s --version-name %s --package-file %s"
                 % (app, version, package))
    if "pool.json" in names:
        lines.append("  az deployment group create -g RESOURCE_GROUP --template-file "
                     "%s/pool.json" % out)
    if merge:
        lake_dir = ".worker-jobs/%s" % job_id
        lines.append("  python -m worker lake put %s/lake/%s %s" % (out, lake_dir, lake_dir))
    if "job.json" in names:
        lines.append("  az batch job create --json-file %s/job.json" % out)
    for name in names:
        if name.startswith("tasks-"):
            lines.append("  az batch task create --job-id %s --json-file %s/%s"
                         % (job_id, out, name))
    return "\n".join(lines) + "\n"


def _emit(document: Dict[str, Any], out: Optional[str]) -> Optional[str]:
    if out is None:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    _write(Path(out), document)
    return None


def _write(path: Path, document: Any) -> None:
    _write_text(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise SpecError("cannot write %s: %s: pass another --out" % (path, e.strerror or e)
                        ) from None


def read_manifest(package: Path) -> Dict[str, str]:
    """The application package's manifest (name, version, ...)."""
    try:
        with zipfile.ZipFile(str(package)) as archive:
            return json.loads(archive.read("manifest.json").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise SpecError("--package %s is not an application package with a manifest.json "
                        "(%s): build one with python -m worker package" % (package, e)
                        ) from None
