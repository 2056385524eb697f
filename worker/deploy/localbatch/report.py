"""What a local run ends with: a table (task, state, exit code, attempts, duration and, for
a task that did not succeed, its one-line reason) and a JSON report with the same and more
(the start task's runs, each task's folder).

The reasons tell apart a task that failed (its exit code and the last line of its stderr.txt,
where the harness writes its one-line failure), one that was blocked (by which task), and one
that never ran or was requeued because its job was disabled or terminated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from ...logs import failure_of

REASON_WIDTH = 200  # characters of a stderr line kept in a reason


def table(start_runs: Sequence[Any], runs: Sequence[Any],
          reasons: Optional[Dict[str, str]] = None) -> str:
    """The rows of the start task's runs and the tasks; a ``reason`` column when one did not
    succeed."""
    reasons = reasons or {}
    rows: List[List[str]] = [["task", "state", "exit", "attempts", "duration", "reason"]]
    for start in start_runs:
        rows.append(["(start task, %s)" % start.boot,
                     "succeeded" if start.exit_code == 0 else "failed",
                     _code(start.exit_code), str(start.tries), "%.1fs" % start.duration_s,
                     "" if start.exit_code == 0 else start.error or ""])
    for run in runs:
        attempts = str(run.attempts) + (" (%d requeued)" % run.requeues if run.requeues else "")
        rows.append([run.task.id, run.state, _code(run.exit_code), attempts,
                     "%.1fs" % run.duration_s, reasons.get(run.task.id, "")])
    if not any(row[5] for row in rows[1:]):
        rows = [row[:5] for row in rows]  # every task succeeded: no reasons to give
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i in (0, 1, 5) else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    return "\n".join(lines) + "\n"


def failure_reasons(runs: Sequence[Any], folder: Callable[[Any], Path],
                    hint: Optional[str] = None) -> Dict[str, str]:
    """Task id -> one line saying why it did not succeed; ``hint`` is added to the first
    failure's."""
    by_id = {run.task.id: run for run in runs}
    reasons: Dict[str, str] = {}
    for run in runs:
        if run.state == "succeeded":
            continue
        reasons[run.task.id] = _reason(run, folder, by_id)
        if hint and run.state in ("failed", "timed_out"):
            reasons[run.task.id] += "; " + hint
            hint = None
    return reasons


def _reason(run: Any, folder: Callable[[Any], Path], by_id: Dict[str, Any]) -> str:
    if run.state == "failed" and run.exit_code is not None:
        last = last_line(folder(run.task) / "stderr.txt", cause=True)
        return "exit %s: %s" % (run.exit_code, last) if last else "exit %s" % run.exit_code
    if run.state == "blocked" and run.blocked_by in by_id:
        dep = by_id[run.blocked_by]
        return "blocked: task %s %s (exit %s) and its dependencyAction is block" % (
            dep.task.id, dep.state.replace("_", " "), _code(dep.exit_code))
    return run.failure or run.state.replace("_", " ")


def last_line(path: Path, cause: bool = False) -> str:
    """The last non-empty line of a text file (its end only is read), or ""; with ``cause``,
    the failure it states without the harness's preamble (:func:`worker.logs.failure_of`)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return ""
    line = failure_of(lines[-1]) if cause else lines[-1]
    return line if len(line) <= REASON_WIDTH else line[:REASON_WIDTH - 3] + "..."


def report(job: Any, pool: Any, root: Path, job_state: str, start_runs: Sequence[Any],
           runs: Sequence[Any], folder: Any, exit_code: int,
           reasons: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    reasons = reasons or {}
    tasks = []
    for run in runs:
        entry = run.to_dict()
        entry["task_dir"] = str(folder(run.task))
        entry["reason"] = reasons.get(run.task.id)
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
