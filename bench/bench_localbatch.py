"""The harness's per-task cost on the local Batch node: 200 no-op tasks on 2 slots through
the application package (Batch's command line, the launcher, `python -m worker run`), against
the same 200 tasks as a bare `python -c pass` of the node environment's Python 3.8.

    .ci-venvs/py38/bin/python bench/bench_localbatch.py [--tasks 200] [--repeat 3]

A package of bench/noop_handler.py is built (wheels from the test suite's cache), a node is
provisioned once (a warm-up job of one task), then each repetition runs both jobs with
`python -m worker local-batch` on that node (its start task a no-op). Reported per job: the
wall time of the run, the tasks' own durations (from start to exit, as the report counts
them) and, per task, the wall time x slots / tasks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from worker.deploy.commandline import start_task_command_line, task_command_line  # noqa: E402

APP, VERSION = "noopbench", "1.0.0"
SLOTS = 2


def build_package(work: Path) -> Path:
    project = work / "noopbench"
    project.mkdir()
    shutil.copy(str(REPO / "bench" / "noop_handler.py"), str(project / "noop_handler.py"))
    out = work / "noopbench.zip"
    subprocess.run([sys.executable, "-m", "worker", "package", str(project), "--out", str(out),
                    "--version", VERSION, "--cache-dir",
                    str(REPO / ".ci-venvs" / "package-wheels")],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def write_job(folder: Path, job_id: str, command_lines: List[str]) -> Path:
    folder.mkdir(parents=True)
    pool = {"resources": [{
        "type": "Microsoft.Batch/batchAccounts/pools", "name": "bench/pool",
        "properties": {
            "taskSlotsPerNode": SLOTS,
            "startTask": {"commandLine": start_task_command_line(APP, VERSION),
                          "waitForSuccess": True, "maxTaskRetryCount": 0},
            "applicationPackages": [{"id": "/applications/%s" % APP, "version": VERSION}]}}]}
    job = {"id": job_id, "poolInfo": {"poolId": "pool"},
           "commonEnvironmentSettings": [{"name": "WORKER_TASK_SLOTS", "value": str(SLOTS)}]}
    tasks = [{"id": str(n + 1), "commandLine": line} for n, line in enumerate(command_lines)]
    for name, document in (("pool.json", pool), ("job.json", job), ("tasks-001.json", tasks)):
        (folder / name).write_text(json.dumps(document))
    return folder


def run_job(package: Path, root: Path, specs: Path) -> Dict[str, Any]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "worker", "local-batch", "--package", str(package),
                    "--specs", str(specs), "--root", str(root)], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    report = json.loads((root / "report.json").read_text())
    assert all(t["state"] == "succeeded" for t in report["tasks"]), report["counts"]
    return {"wall": wall, "task_s": sum(t["duration_s"] for t in report["tasks"]),
            "tasks": len(report["tasks"])}


def env_python(root: Path) -> str:
    pointers = list((root / "shared" / "batch-worker" / "packages").iterdir())
    env = pointers[0].read_text().splitlines()[1]
    return str(root / "shared" / "batch-worker" / env / "bin" / "python")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-localbatch-"))
    try:
        package = build_package(work)
        root = work / "node"
        harness = [task_command_line(APP, VERSION, ["run", "noop_handler:noop"])] * args.tasks
        run_job(package, root, write_job(work / "warmup", "warmup", harness[:1]))
        bare = ["%s -c pass" % env_python(root)] * args.tasks
        results: Dict[str, List[Dict[str, Any]]] = {"harness": [], "bare": []}
        for n in range(args.repeat):
            for name, lines in (("harness", harness), ("bare", bare)):
                specs = write_job(work / ("%s-%d" % (name, n)), "%s-%d" % (name, n), lines)
                results[name].append(run_job(package, root, specs))
        report(results, args.tasks)
    finally:
        shutil.rmtree(str(work), ignore_errors=True)
    return 0


def report(results: Dict[str, List[Dict[str, Any]]], tasks: int) -> None:
    print("%d no-op tasks on %d slots, median of %d runs (Python %s runs local-batch)"
          % (tasks, SLOTS, len(results["harness"]), sys.version.split()[0]))
    print("%-8s %10s %14s %16s" % ("job", "wall s", "per task ms", "task time ms"))
    medians = {}
    for name, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        per_task = statistics.median(r["task_s"] for r in runs) / tasks * 1000
        medians[name] = (wall, per_task)
        print("%-8s %10.2f %14.1f %16.1f" % (name, wall, wall * SLOTS / tasks * 1000, per_task))
    extra = medians["harness"][1] - medians["bare"][1]
    print("harness cost per task: %.1f ms of task time (launcher, python -m worker run, "
          "result.json) over a bare python -c pass" % extra)


if __name__ == "__main__":
    sys.exit(main())
