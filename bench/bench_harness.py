"""Harness overhead: ``python -m worker run`` on a no-op handler vs ``python -c`` calling it.

Both run as fresh processes, alternating, so they see the same machine state, on the base
interpreter (no venv, no site-packages of ours: the worker comes from this checkout through
PYTHONPATH with its bytecode compiled, as a node runs it after the start task). The ratio of
medians is what matters: the harness should add under 2x a bare interpreter's start-up, which
means no Azure SDK, pyarrow or duckdb import on this path.

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

BENCH_DIR = Path(__file__).resolve().parent


def timed(cmd, env) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=str(BENCH_DIR), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


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
        harness = [args.python, "-m", "worker", "run", "noop_handler:noop",
                   "--result", os.path.join(tmp, "result.json")]
        bare = [args.python, "-c", "import noop_handler; noop_handler.noop(None)"]
        empty = [args.python, "-c", "pass"]
        # What any harness of `python -m` + argparse + logging + json + inspect pays first.
        floor = [args.python, "-c", "import runpy, argparse, logging, json, inspect"]
        commands = {"harness": harness, "bare": bare, "empty": empty, "floor": floor}
        for cmd in commands.values():  # warm the page cache and .pyc files
            timed(cmd, env)
        times = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    version = subprocess.run([args.python, "--version"], capture_output=True, text=True)
    print(f"{version.stdout.strip()}, {args.runs} runs each, medians:")
    print(f"  python -c 'pass'                       {med['empty'] * 1000:7.1f} ms")
    print(f"  python -c (import + call the handler)  {med['bare'] * 1000:7.1f} ms")
    print(f"  python -m worker run (same handler)    {med['harness'] * 1000:7.1f} ms")
    print(f"  stdlib floor (runpy, argparse, logging, json, inspect) {med['floor'] * 1000:7.1f} ms")
    print(f"  ratio harness / bare                   {med['harness'] / med['bare']:7.2f}x")
    print(f"  ratio stdlib floor / bare              {med['floor'] / med['bare']:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
