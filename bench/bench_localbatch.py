"""The harness's per-task cost on the local Batch node: 200 no-op tasks on 2 slots through
the application package (Batch's command line, the launcher, `python -m worker run`), against
the same 200 tasks as a bare `python -c pass` of the node environment's Python 3.8, and as
`/bin/true` (the node's own cost: its scheduler and process starts).

    .ci-venvs/py38/bin/python bench/bench_localbatch.py [--tasks 200] [--slots 2] [--repeat 3]
        [--jobs harness bare true]

A package of bench/noop_handler.py is built (wheels from the test suite's cache), a node is
provisioned once (a warm-up job of one task), then each repetition runs the jobs with
`python -m worker local-batch` on that node (its start task a no-op). Reported per job: the
wall time of the run, the tasks' own durations (from start to exit, as the report counts
them), per task the wall time x slots / tasks, and the scheduler's overhead per task: the
slot time no task used, (wall x slots - the tasks' durations) / tasks, and local-batch's own
CPU time (user + system, without its tasks') per task.
"""

from __future__ import annotations

import argparse
import json
import os
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


def write_job(folder: Path, job_id: str, command_lines: List[str], slots: int) -> Path:
    folder.mkdir(parents=True)
    pool = {"resources": [{
        "type": "Microsoft.Batch/batchAccounts/pools", "name": "bench/pool",
        "properties": {
            "taskSlotsPerNode": slots,
            "startTask": {"commandLine": start_task_command_line(APP, VERSION),
                          "waitForSuccess": True, "maxTaskRetryCount": 0},
            "applicationPackages": [{"id": "/applications/%s" % APP, "version": VERSION}]}}]}
    job = {"id": job_id, "poolInfo": {"poolId": "pool"},
           "commonEnvironmentSettings": [{"name": "WORKER_TASK_SLOTS", "value": str(slots)}]}
    tasks = [{"id": str(n + 1), "commandLine": line} for n, line in enumerate(command_lines)]
    for name, document in (("pool.json", pool), ("job.json", job), ("tasks-001.json", tasks)):
        (folder / name).write_text(json.dumps(document))
    return folder


def run_job(package: Path, root: Path, specs: Path) -> Dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "worker", "local-batch", "--package",
                             str(package), "--specs", str(specs), "--root", str(root)],
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert status == 0, status
    report = json.loads((root / "report.json").read_text())
    assert all(t["state"] == "succeeded" for t in report["tasks"]), report["counts"]
    # CPU of local-batch and the tasks it waited for (for /bin/true tasks: the node's own)
    return {"wall": wall, "task_s": sum(t["duration_s"] for t in report["tasks"]),
            "tasks": len(report["tasks"]), "cpu": usage.ru_utime + usage.ru_stime}


def env_python(root: Path) -> str:
    pointers = list((root / "shared" / "batch-worker" / "packages").iterdir())
    env = pointers[0].read_text().splitlines()[1]
    return str(root / "shared" / "batch-worker" / env / "bin" / "python")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--slots", type=int, default=2, help="taskSlotsPerNode")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", nargs="+", choices=("harness", "bare", "true"),
                        default=["harness", "bare", "true"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-localbatch-"))
    try:
        package = build_package(work)
        root = work / "node"
        harness = [task_command_line(APP, VERSION, ["run", "noop_handler:noop"])] * args.tasks
        run_job(package, root, write_job(work / "warmup", "warmup", harness[:1], args.slots))
        lines = {"harness": harness, "bare": ["%s -c pass" % env_python(root)] * args.tasks,
                 "true": ["/bin/true"] * args.tasks}
        results: Dict[str, List[Dict[str, Any]]] = {name: [] for name in args.jobs}
        for n in range(args.repeat):
            for name in args.jobs:
                specs = write_job(work / ("%s-%d" % (name, n)), "%s-%d" % (name, n),
                                  lines[name], args.slots)
                results[name].append(run_job(package, root, specs))
        report(results, args.tasks, args.slots)
    finally:
        shutil.rmtree(str(work), ignore_errors=True)
    return 0


def report(results: Dict[str, List[Dict[str, Any]]], tasks: int, slots: int) -> None:
    print("%d tasks on %d slots, median of %d runs (Python %s runs local-batch)"
          % (tasks, slots, len(next(iter(results.values()))), sys.version.split()[0]))
    print("%-8s %9s %13s %14s %19s %13s" % ("job", "wall s", "per task ms", "task time ms",
                                            "idle slot ms/task", "CPU ms/task"))
    medians = {}
    for name, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        task_s = statistics.median(r["task_s"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        medians[name] = task_s / tasks * 1000
        print("%-8s %9.2f %13.1f %14.1f %19.1f %13.1f" % (
            name, wall, wall * slots / tasks * 1000, task_s / tasks * 1000,
            (wall * slots - task_s) / tasks * 1000, cpu / tasks * 1000))
    if "harness" in medians and "bare" in medians:
        print("harness cost per task: %.1f ms of task time (launcher, python -m worker run, "
              "result.json) over a bare python -c pass" % (medians["harness"] - medians["bare"]))
    print("idle slot time per task: slot time no task used (the scheduler's polling and "
          "process starts); CPU per task: local-batch's and the tasks' (for /bin/true: the "
          "node's own)")


if __name__ == "__main__":
    sys.exit(main())
