"""A job's scale: ``python -m worker spec all`` for a fan-out of N items, from a range and from
a lake listing of N files, and the example merge task over N partitions.

- ``spec``: wall time and peak memory (the child's max RSS) of ``spec all --package ZIP`` for
  ``{range = [1, N]}`` and ``{lake = "raw/part-*.csv"}`` over N files in the emulated lake
  (listed through the lake's REST calls with the caller's credential, as for a real lake);
  the goal (issue 27): 100,000 tasks in under 30 s and 500 MB, growing linearly.
- ``merge``: the example's merge task (examples/handlers/pipeline.py:merge) as a task
  process over N one-row daily partitions and the items file ``spec`` wrote, in a
  ``file://`` lake (the lake's own code; no network in the way): wall time and peak memory.

    python bench/bench_spec.py --package examples.zip [--sizes 10000 30000 100000]
        [--merge-sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
EXAMPLES = REPO / "examples"
sys.path.insert(0, str(REPO))

from worker.emulators import CLEARED_VARIABLES, EmulatorSet  # noqa: E402
from worker.emulators.handle import EmulatorHandle  # noqa: E402

# Starts the command from a fresh, small process: a child forked from this one (which holds
# the emulated lake) would count this process's pages in its peak memory.
_LAUNCH = ("import os, subprocess, sys, time; t = time.perf_counter(); "
           "p = subprocess.Popen(sys.argv[1:]); _, s, u = os.wait4(p.pid, 0); "
           "print('%d %f %d' % (s, time.perf_counter() - t, u.ru_maxrss), file=sys.stderr)")


def measured(cmd: List[str], env: Dict[str, str], cwd: Path) -> Tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``cmd``."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], cwd=str(cwd), env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status, wall, peak = proc.stderr.decode().strip().splitlines()[-1].split()
    if status != "0":
        raise SystemExit("%s failed: %s" % (" ".join(cmd), proc.stderr.decode()[-2000:]))
    return float(wall), int(peak) / 1024


def spec_all(package: Path, items: str, out: Path, env: Dict[str, str]) -> Tuple[float, float]:
    """``spec all`` of the example's spec with these items (in a copy of the spec file:
    a long list does not fit a command line)."""
    spec = out.parent / (out.name + ".toml")
    text = (EXAMPLES / "batch.toml").read_text().replace("[tasks]\n", "[tasks]\nitems = %s\n"
                                                         % items, 1)
    spec.write_text("\n".join(line for line in text.splitlines()
                               if not line.startswith("items = { lake")) + "\n")
    return measured([sys.executable, "-m", "worker", "spec", "all", "--spec", str(spec),
                     "--package", str(package), "--set", "job.id=scale", "--out", str(out)],
                    env, EXAMPLES)


def bench_spec(package: Path, sizes: List[int], tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
    print("spec all (wall s, peak MB):")
    print("  %8s  %22s  %22s" % ("items", "{range = [1, N]}", "{lake = raw/part-*.csv}"))
    with EmulatorSet() as emulators:
        handle = EmulatorHandle(emulators)
        lake_env = dict(env, **emulators.environment())
        seeded = 0
        for size in sizes:
            for n in range(seeded, size):
                handle.seed_file("data", "raw/part-%06d.csv" % n, b"x\n")
            seeded = size
            ranged = spec_all(package, "{range = [1, %d]}" % size, tmp / "range", env)
            listed = spec_all(package, '{lake = "raw/part-*.csv"}', tmp / "lake", lake_env)
            tasks = sum(len(json.loads(p.read_text())) for p in (tmp / "lake").glob("tasks-*"))
            assert tasks == size + 1, tasks  # the fan-out and the merge
            print("  %8d  %9.2f s %7.0f MB  %9.2f s %7.0f MB" % (size, *ranged, *listed))


def bench_merge(package: Path, sizes: List[int], tmp: Path) -> None:
    """The merge task over N partitions of a file:// lake."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    print("merge task over N partitions (wall s, peak MB):")
    for size in sizes:
        lake = tmp / ("lake-%d" % size)
        days = ["d%06d" % n for n in range(size)]
        table = pa.table({"region": ["eu"], "customer": ["c"], "orders": [1], "total": [1.0]})
        for day in days:
            folder = lake / "curated" / "daily" / ("date=" + day)
            folder.mkdir(parents=True)
            pq.write_table(table, str(folder / "part-0.parquet"))
        items = "{list = [%s]}" % ", ".join('"raw/sales/date=%s/"' % d for d in days)
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
        env["WORKER_LAKE_URL"] = "file://%s" % lake
        specs = tmp / ("specs-%d" % size)
        spec_all(package, items, specs, env)
        items_file = next((specs / "lake").rglob("items.json"))
        target = lake / items_file.relative_to(specs / "lake")
        target.parent.mkdir(parents=True)
        target.write_bytes(items_file.read_bytes())
        task = tmp / ("task-%d" % size)
        (task / "wd").mkdir(parents=True)
        env.update(AZ_BATCH_JOB_ID="scale", AZ_BATCH_TASK_ID="merge",
                   AZ_BATCH_TASK_DIR=str(task), AZ_BATCH_TASK_WORKING_DIR=str(task / "wd"),
                   PYTHONPATH=str(EXAMPLES))
        wall, peak = measured([sys.executable, "-m", "worker", "run",
                               "handlers.pipeline:merge", "--param",
                               "items_file=" + str(target.relative_to(lake))], env, EXAMPLES)
        result = json.loads((task / "wd" / "result.json").read_text())
        assert result["return_value"]["days"] == size, result
        print("  %8d  %9.2f s %7.0f MB" % (size, wall, peak))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, help="examples built with worker package")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000, 30000, 100000])
    parser.add_argument("--merge-sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    args = parser.parse_args()
    print("Python %s" % sys.version.split()[0])
    with tempfile.TemporaryDirectory(prefix="bench-spec-") as tmp:
        if args.sizes:
            bench_spec(Path(args.package).resolve(), args.sizes, Path(tmp))
        if args.merge_sizes:
            bench_merge(Path(args.package).resolve(), args.merge_sizes, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
