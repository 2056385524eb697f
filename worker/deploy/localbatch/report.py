"""What a local run ends with: a table (task, state, exit code, attempts, duration) and a
JSON report with the same and more (the start task's runs, each task's folder, the reason a
task failed, was blocked or never ran)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence


def table(start_runs: Sequence[Any], runs: Sequence[Any]) -> str:
    rows: List[List[str]] = [["task", "state", "exit", "attempts", "duration"]]
    for start in start_runs:
        rows.append(["(start task, %s)" % start.boot,
                     "succeeded" if start.exit_code == 0 else "failed",
                     _code(start.exit_code), str(start.tries), "%.1fs" % start.duration_s])
    for run in runs:
        attempts = str(run.attempts) + (" (%d requeued)" % run.requeues if run.requeues else "")
        rows.append([run.task.id, run.state, _code(run.exit_code), attempts,
                     "%.1fs" % run.duration_s])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    return "\n".join(lines) + "\n"


def report(job: Any, pool: Any, root: Path, job_state: str, start_runs: Sequence[Any],
           runs: Sequence[Any], folder: Any, exit_code: int) -> Dict[str, Any]:
    tasks = []
    for run in runs:
        entry = run.to_dict()
        entry["task_dir"] = str(folder(run.task))
        tasks.append(entry)
    return {
        "job_id": job.id, "pool_id": pool.id, "node_root": str(root),
        "task_slots": pool.slots, "job_state": job_state,
        "start_task": [s.to_dict() for s in start_runs],
        "tasks": tasks,
        "counts": _counts(runs),
        "exit_code": exit_code,
    }


def write_report(path: Path, document: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)


def _counts(runs: Sequence[Any]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for run in runs:
        counts[run.state] = counts.get(run.state, 0) + 1
    return counts


def _code(code: Any) -> str:
    return "-" if code is None else str(code)
