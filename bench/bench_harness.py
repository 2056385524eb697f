"""Harness overhead: ``python -m worker run`` on a no-op handler against the standard library
any such harness needs.

Every command runs as a fresh process, in rotation, so all see the same machine state, on
the given interpreter (the node's venv: ``--python .worker/venv/bin/python``, which
``starttask.sh`` builds), with the worker from this checkout on PYTHONPATH and its bytecode
compiled, as a node runs it after the start task:

- ``python -c pass``: the interpreter alone;
- the stdlib floor, ``python -c "import runpy, argparse, logging, json, inspect"``: what any
  ``python -m`` harness with argparse, logging, a JSON record and signature checks imports;
- ``python -c`` importing and calling the handler (no harness);
- ``python -m worker run noop_handler:noop`` off Batch, and as a Batch task (the variables
  Batch sets, a task folder: the attempt count and the failure record are kept there).

Wall time (median) is what a task waits; CPU time (user + system, median) is the same work
less the waits of a loaded machine, which makes the ratio steadier. The goal (issue 27):
the harness on a node within 1.25x of the stdlib floor.

    python bench/bench_harness.py [--runs 30] [--python PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

BENCH_DIR = Path(__file__).resolve().parent


def timed(cmd: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    """Wall and CPU seconds of one run of ``cmd``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(BENCH_DIR), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit("%s failed (wait status %d)" % (" ".join(cmd), status))
    return wall, usage.ru_utime + usage.ru_stime


def node_env(env: Dict[str, str], folder: Path) -> Dict[str, str]:
    """The variables Batch sets for a task (its folder under ``folder``)."""
    (folder / "wd").mkdir(parents=True, exist_ok=True)
    return dict(env, AZ_BATCH_JOB_ID="bench", AZ_BATCH_TASK_ID="noop",
                AZ_BATCH_NODE_ID="tvm-bench", AZ_BATCH_POOL_ID="bench",
                AZ_BATCH_TASK_DIR=str(folder), AZ_BATCH_TASK_WORKING_DIR=str(folder / "wd"),
                AZ_BATCH_NODE_SHARED_DIR=str(folder / "shared"), WORKER_TASK_RETRIES="2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    parser.add_argument("--python", default=str(base))
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "AZ_BATCH_"))}
    env["PYTHONPATH"] = str(BENCH_DIR.parent)
    # Nodes run with bytecode compiled at provisioning (starttask.sh); so does this benchmark,
    # even where PYTHONDONTWRITEBYTECODE is set.
    subprocess.run([args.python, "-m", "compileall", "-q", str(BENCH_DIR.parent / "worker"),
                    str(BENCH_DIR / "noop_handler.py")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        harness = [args.python, "-m", "worker", "run", "noop_handler:noop"]
        commands = {
            "empty": ([args.python, "-c", "pass"], env),
            "floor": ([args.python, "-c", "import runpy, argparse, logging, json, inspect"],
                      env),
            "bare": ([args.python, "-c", "import noop_handler; noop_handler.noop(None)"], env),
            "harness": (harness + ["--result", os.path.join(tmp, "result.json")], env),
            "node": (harness, node_env(env, Path(tmp) / "task")),
        }
        for cmd, cmd_env in commands.values():  # warm the page cache and .pyc files
            timed(cmd, cmd_env)
        times: Dict[str, List[Tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (cmd, cmd_env) in commands.items():
                times[name].append(timed(cmd, cmd_env))
    wall = {k: statistics.median(w for w, _ in v) * 1000 for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) * 1000 for k, v in times.items()}
    version = subprocess.run([args.python, "--version"], capture_output=True, text=True)
    print(f"{version.stdout.strip()}, {args.runs} runs each, medians (wall / CPU):")
    rows = [("empty", "python -c 'pass'"),
            ("floor", "stdlib floor (runpy, argparse, logging, json, inspect)"),
            ("bare", "python -c (import + call the handler)"),
            ("harness", "python -m worker run (same handler), off Batch"),
            ("node", "python -m worker run (same handler), a Batch task")]
    for key, label in rows:
        print(f"  {label:56s} {wall[key]:6.1f} / {cpu[key]:5.1f} ms  "
              f"{wall[key] / wall['floor']:.2f}x / {cpu[key] / cpu['floor']:.2f}x floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
