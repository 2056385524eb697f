"""``python -m worker results JOB [--out FILE]``: every task's result record in one table.

The records are the harness's ``result.json``: read from the job's folder in the lake
(``.worker-jobs/JOB/results/TASK.json``, one listing, then the files, many at a time), and
from the task's node (``wd/result.json`` through Batch's file API) for the tasks the lake
has no copy of; a task whose node is gone and whose record is not in the lake has only
Batch's own columns. One row per task, in task order: ``task_id``, ``item`` (the task's
display name: the fan-out's item), ``state`` (Batch's), ``status``, ``exit_code``,
``duration_s``, ``started_at``, ``ended_at``, ``attempt``, ``node_id``, ``error``,
``outputs`` (the committed paths, JSON), ``source`` (lake, node or none), and the handler's
return value flattened: ``return.KEY`` (``return.a.b`` for nested objects; lists and mixed
types as JSON text), or ``return`` for a value that is not an object.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Dict, List, Optional

from ...errors import OK
from ..errors import CloudError
from .options import ACCOUNT_HELP, add_account_options, load_spec, run_command

EPILOG = """examples:
  python -m worker results sales-daily                       # a table on stdout
  python -m worker results sales-daily --out results.parquet
  python -m worker results sales-daily --out results.csv     # or .json

""" + ACCOUNT_HELP + """
  lake: the one the job's tasks wrote to (the job's own WORKER_LAKE_URL, which deploy set
    from [job] lake_url), else WORKER_LAKE_URL, else [job] lake_url: the records in the
    job's folder there (.worker-jobs/JOB/results/TASK.json)

exit codes:
  0 written; 2 no such job, an --out of another kind, a missing role, a wrong account;
  3 the service kept failing"""

FORMATS = (".parquet", ".csv", ".json")
FIXED = ["task_id", "item", "state", "status", "exit_code", "duration_s", "started_at",
         "ended_at", "attempt", "node_id", "error", "outputs", "source"]
CONCURRENCY = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("job", metavar="JOB", help="the job's id")
    parser.add_argument("--out", metavar="FILE",
                        help="write the table: .parquet, .csv or .json (default: a text table "
                             "on stdout)")
    add_account_options(parser)


def run(args: argparse.Namespace) -> int:
    return run_command("results", lambda: _results(args, sys.stdout))


def _results(args: argparse.Namespace, out: IO[str]) -> int:
    from .account import Clients, resolve

    if args.out and Path(args.out).suffix.lower() not in FORMATS:
        raise CloudError("--out %s: write .parquet, .csv or .json" % args.out)
    spec = load_spec(args)
    clients = Clients(resolve(spec, args.account_url, args.shared_key))
    try:
        rows = collect(clients, args.job, job_lake(clients, args.job, spec))
    finally:
        clients.close()
    if args.out:
        write(rows, Path(args.out))
        sources = {r["source"] for r in rows}
        out.write("wrote %s: %d task(s) (records from %s)\n" % (
            args.out, len(rows), ", ".join(sorted(sources)) or "nowhere"))
    else:
        out.write(text_table(rows))
    return OK


def job_lake(clients: Any, job_id: str, spec: Any) -> Optional[str]:
    """The lake the job's tasks wrote their records to (``lake.job_lake_url``)."""
    from .failures import translate
    from .lake import job_lake_url

    try:
        job = clients.batch.get_job(job_id, select=["id", "commonEnvironmentSettings"])
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "reading job %s" % job_id, clients.target.where(),
                        not_found="there is no job %s in account %s: check the id"
                        % (job_id, clients.target.account or clients.target.url)) from None
    return job_lake_url(job.common_environment_settings, spec)


def collect(clients: Any, job_id: str, lake_url: Optional[str]) -> List[Dict[str, Any]]:
    """One row per task of the job (see the module's docstring)."""
    from .failures import translate
    from .listing import list_tasks

    where = clients.target.where()
    try:
        tasks = list(list_tasks(clients.batch, job_id,
                                ["id", "displayName", "state", "executionInfo", "nodeInfo"]))
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "listing the tasks of job %s" % job_id, where,
                        not_found="there is no job %s in account %s: check the id"
                        % (job_id, clients.target.account or clients.target.url)) from None
    records = _from_lake(job_id, tasks, lake_url)
    missing = [t for t in tasks if t["id"] not in records
               and str(t.get("state")).lower() == "completed"]
    with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="results") as pool:
        for task, record in zip(missing, pool.map(
                lambda t: _from_node(clients, job_id, t["id"]), missing)):
            if record is not None:
                records[task["id"]] = record
    rows = [row(task, *records.get(task["id"], (None, "none"))) for task in tasks]
    return sorted(rows, key=lambda r: _order(r["task_id"]))


def _from_lake(job_id: str, tasks: List[Dict[str, Any]], lake_url: Optional[str]
               ) -> Dict[str, Any]:
    from ...jobfiles import result_file, results_folder
    from .lake import list_lake, read_lake

    if not lake_url:
        return {}
    completed = {t["id"] for t in tasks if str(t.get("state")).lower() == "completed"}
    there = set(list_lake(lake_url, results_folder(job_id)))
    paths = {result_file(job_id, tid): tid for tid in completed
             if result_file(job_id, tid) in there}
    found = read_lake(lake_url, list(paths))
    return {paths[p]: (_parsed(data), "lake") for p, data in found.items()
            if _parsed(data) is not None}


def _from_node(clients: Any, job_id: str, task_id: str) -> Optional[Any]:
    from . import files

    data = files.read(clients.batch, job_id, task_id, "wd/result.json",
                      clients.target.where())
    record = _parsed(data) if data else None
    return (record, "node") if record is not None else None


def _parsed(data: Optional[bytes]) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads(data) if data else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def row(task: Dict[str, Any], record: Optional[Dict[str, Any]], source: str
        ) -> Dict[str, Any]:
    """One task's row from Batch's task and its record (None: Batch's columns only)."""
    info = task.get("executionInfo") or {}
    record = record or {}
    error = record.get("error") or {}
    found: Dict[str, Any] = {
        "task_id": task["id"], "item": task.get("displayName"),
        "state": str(task.get("state") or "").lower(),
        "status": record.get("status") or ({"success": "succeeded", "failure": "failed"}.get(
            str(info.get("result") or "").lower())),
        "exit_code": record.get("exit_code", info.get("exitCode")),
        "duration_s": record.get("duration_s"),
        "started_at": record.get("started_at") or info.get("startTime"),
        "ended_at": record.get("ended_at") or info.get("endTime"),
        "attempt": (record.get("task") or {}).get("attempt"),
        "node_id": (record.get("task") or {}).get("node_id") or (task.get("nodeInfo") or {}
                                                                   ).get("nodeId"),
        "error": error.get("message") if error else None,
        "outputs": json.dumps([o.get("path") for o in record.get("outputs") or []])
        if record else None,
        "source": source,
    }
    if "return_value" in record:
        found.update(flatten(record["return_value"]))
    return found


def flatten(value: Any, prefix: str = "return") -> Dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1]}`` -> ``{"return.a.b": 1, "return.c": "[1]"}``."""
    if isinstance(value, dict):
        out: Dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, "%s.%s" % (prefix, key)))
        return out
    if isinstance(value, (list, tuple)):
        return {prefix: json.dumps(value, sort_keys=True)}
    return {prefix: value}


def columns(rows: List[Dict[str, Any]]) -> List[str]:
    extra = sorted({k for r in rows for k in r} - set(FIXED))
    return FIXED + extra


def _evened(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each column one type: a column whose values mix kinds holds them as JSON text."""
    names = columns(rows)
    out = [{name: r.get(name) for name in names} for r in rows]
    for name in names:
        kinds = {_kind(r[name]) for r in out if r[name] is not None}
        if len(kinds) > 1:
            for r in out:
                if r[name] is not None and not isinstance(r[name], str):
                    r[name] = json.dumps(r[name])
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def write(rows: List[Dict[str, Any]], path: Path) -> None:
    """The table as parquet, CSV or JSON (by the suffix)."""
    rows = _evened(rows)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    elif suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns(rows), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(buffer.getvalue(), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = columns(rows)
        table = pa.Table.from_pylist(rows) if rows else pa.table({n: [] for n in names})
        pq.write_table(table.select(names), str(path))


def text_table(rows: List[Dict[str, Any]]) -> str:
    head = ["task", "item", "status", "exit", "duration", "source"]
    body = [[r["task_id"], str(r.get("item") or "")[:40], r.get("status") or r["state"],
             "" if r.get("exit_code") is None else str(r["exit_code"]),
             "" if r.get("duration_s") is None else "%.1fs" % r["duration_s"], r["source"]]
            for r in rows]
    widths = [max([len(h)] + [len(str(line[i])) for line in body]) for i, h in enumerate(head)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip()
             for line in [head] + body]
    lines.append(summary(rows))
    return "\n".join(lines) + "\n"


def summary(rows: List[Dict[str, Any]]) -> str:
    """``5 task(s): 3 succeeded, 1 failed, 1 not finished``: a task that has not completed
    (active, preparing, running) is not finished, whatever an earlier run's record says."""
    done = [r for r in rows if r["state"] == "completed"]
    succeeded = sum(1 for r in done if r.get("status") == "succeeded")
    return "%d task(s): %d succeeded, %d failed, %d not finished" % (
        len(rows), succeeded, len(done) - succeeded, len(rows) - len(done))


def _order(task_id: str) -> List[Any]:
    return [0, int(task_id), ""] if task_id.isdigit() else [1, 0, task_id]
