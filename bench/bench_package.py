"""Application package benchmark: building it, and a node starting from it with no network,
against today's start-task pattern with the same Python present.

    .ci-venvs/py38/bin/python bench/bench_package.py [--repeat 3]

Each repetition:
  build cold  `python -m worker package examples` with an empty wheel cache and an empty uv
              cache (resolves the project's requirements, downloads every wheel from PyPI,
              builds the worker's wheel)
  build warm  the same with both caches filled (what a rebuild costs)
  extract     unzip the package into a node's applications/ folder (Batch does this)
  start       the package's starttask.sh on a fresh node inside `unshare -n` (loopback only:
              the wheelhouse is all it has), with the node's Python 3.8 present
  reboot      the same start task again (the stamp fast path)
  today       today's pattern (bench_starttask.today: python3.8 -m venv, then one `pip install
              pkg==ver` per top-level package from PyPI, in sequence) plus the example's own
              `pip install tabulate==0.9.0`
then times the launcher's fast path on the provisioned node: `bash task.sh --version` against
the environment's own `python -m worker --version`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_starttask  # noqa: E402

EXTRA = "tabulate==0.9.0"  # examples/requirements.txt


def timed(command: List[str], env: Optional[Dict[str, str]] = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def build(out: Path, cache: Path, uv_cache: Path) -> float:
    env = dict(os.environ, UV_CACHE_DIR=str(uv_cache))
    return timed([sys.executable, "-m", "worker", "package", str(REPO / "examples"), "--out",
                  str(out), "--cache-dir", str(cache)], env)


def extract(package: Path, folder: Path) -> float:
    start = time.perf_counter()
    with zipfile.ZipFile(str(package)) as archive:
        archive.extractall(str(folder))
    return time.perf_counter() - start


def node_env(root: Path, app: Path) -> Dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(root),
            "PYENV_ROOT": str(Path.home() / ".pyenv"),
            "AZ_BATCH_NODE_ROOT_DIR": str(root),
            "AZ_BATCH_NODE_SHARED_DIR": str(root / "shared"),
            "AZ_BATCH_NODE_STARTUP_DIR": str(root / "startup"),
            "AZ_BATCH_APP_PACKAGE_examples_1_0_0": str(app)}


def start_offline(root: Path, app: Path) -> float:
    script = 'ip link set lo up && exec bash "$AZ_BATCH_APP_PACKAGE_examples_1_0_0/starttask.sh"'
    return timed(["unshare", "--net", "bash", "-c", script], node_env(root, app))


def today(python: Path, work: Path) -> float:
    seconds = bench_starttask.today(python, work)
    pip = [str(work / "venv" / "bin" / "pip"), "install", "--quiet", "--no-cache-dir", EXTRA]
    return seconds + bench_starttask.timed(pip, bench_starttask.clean_env())


def launcher(root: Path, app: Path, runs: int) -> Dict[str, List[float]]:
    env = node_env(root, app)
    python = next((root / "shared" / "batch-worker" / "envs").glob("*/bin/python"))
    commands = {"task.sh": ["bash", str(app / "task.sh"), "--version"],
                "python": [str(python), "-m", "worker", "--version"]}
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(timed(command, env))
    return times


def run(args: argparse.Namespace) -> Dict[str, List[float]]:
    python = Path(args.python)
    results: Dict[str, List[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        work = Path(tmp)
        package = work / "examples.zip"
        for repetition in range(args.repeat):
            cache, uv_cache = work / ("wheels-%d" % repetition), work / ("uv-%d" % repetition)
            node = work / ("node-%d" % repetition)
            app = node / "applications" / "examples1.0.0"
            steps = [
                ("build cold", partial(build, package, cache, uv_cache)),
                ("build warm", partial(build, package, cache, uv_cache)),
                ("extract", partial(extract, package, app)),
                ("start", partial(start_offline, node, app)),
                ("reboot", partial(start_offline, node, app)),
                ("today", partial(today, python, work / ("today-%d" % repetition))),
            ]
            for name, step in steps:
                os.sync()  # the previous step's writeback must not slow this one
                results.setdefault(name, []).append(step())
                print("%-10s %6.2f s" % (name, results[name][-1]), file=sys.stderr)
            shutil.rmtree(str(work / ("today-%d" % repetition)))
        results["size"] = [package.stat().st_size]
        results.update(launcher(node, app, args.launcher_runs))
    return results


def report(results: Dict[str, List[float]]) -> str:
    median = {name: statistics.median(times) for name, times in results.items()}
    rows = [
        ("`worker package examples`, empty caches (downloads every wheel)", "build cold"),
        ("`worker package examples`, caches filled", "build warm"),
        ("extract the zip (Batch's part)", "extract"),
        ("start task from the extracted package, `unshare -n` (offline)", "start"),
        ("start task again (reboot: stamp fast path)", "reboot"),
        ("today's pattern: venv + 6 sequential `pip install` from PyPI", "today"),
    ]
    lines = ["| step | median (s) | runs (s) |", "| --- | --- | --- |"]
    for label, name in rows:
        runs = ", ".join("%.2f" % t for t in results[name])
        lines.append("| %s | %.2f | %s |" % (label, median[name], runs))
    overhead = (median["task.sh"] - median["python"]) * 1000
    lines += [
        "",
        "- package size: %.1f MiB" % (results["size"][0] / 2**20),
        "- today / start from the package offline: **%.1fx**" % (median["today"] / median["start"]),
        "- launcher fast path: `bash task.sh --version` %.1f ms vs the environment's "
        "`python -m worker --version` %.1f ms: **%.1f ms** added (median of %d)"
        % (median["task.sh"] * 1000, median["python"] * 1000, overhead, len(results["python"])),
    ]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--launcher-runs", type=int, default=40)
    parser.add_argument("--python", default=bench_starttask.default_python(),
                        help="the node's Python 3.8 (for today's pattern)")
    print(report(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
