"""A busy node: N short tasks, each reading a lake file and a secret, on one node with S slots,
its managed-identity endpoint throttled as Azure's (20 token requests a second, 5 at once).

Side by side in one run, for each slot count: the harness of a baseline commit, where every
task process asks the endpoint for its own tokens through azure-identity (``--baseline``,
default 986649d, the commit before issue 27), and this checkout's, whose tasks share one
token per identity and resource through the node's token cache. Each harness has a node of
its own (its own VM of the endpoint, its own token folder); the two take turns in chunks of
``--chunk`` tasks, so that a change in the machine's load falls on both alike. Each task is
``python -m worker run`` with the variables Batch sets, in its own task folder, on the node
venv's Python (``--python``), the harness from the commit's tree on PYTHONPATH; the
emulators run in this process. Reported per run: tasks that failed (by exit code), tasks
per second, and the token requests the endpoint served and throttled (429), counted by the
emulator.

    python bench/bench_busy_node.py --python .worker/venv/bin/python [--tasks 2000]
        [--slots 16 32] [--baseline 986649d] [--per-second 20] [--concurrent 5]
        [--latency-ms 0] [--chunk 250] [--with-cache-off]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Tuple

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from worker.emulators import CLEARED_VARIABLES, EmulatorSet  # noqa: E402
from worker.emulators.handle import EmulatorHandle  # noqa: E402
from worker.emulators.identity_limits import Limits, Throttle  # noqa: E402

SECRET = "busy-secret"
HANDLER = "busy_handler:read_file_and_secret"


def checkout(ref: str, into: Path, python: str) -> Path:
    """The worker package of ``ref`` (git archive), compiled as a node's would be."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "worker"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    subprocess.run([python, "-m", "compileall", "-q", str(into / "worker")], check=True)
    return into


def node_root(root: Path) -> Path:
    """A node's folders, with the token folder the start task makes (bootstrap/tokens.sh)."""
    tokens = root / "shared" / "batch-worker" / "tokens"
    tokens.mkdir(parents=True)
    tokens.chmod(0o1733)
    return root


def task_env(base: Dict[str, str], root: Path, n: int) -> Dict[str, str]:
    folder = root / "workitems" / "busy" / "job-1" / str(n)
    (folder / "wd").mkdir(parents=True)
    return dict(base, AZ_BATCH_JOB_ID="busy", AZ_BATCH_TASK_ID=str(n),
                AZ_BATCH_TASK_DIR=str(folder), AZ_BATCH_TASK_WORKING_DIR=str(folder / "wd"))


def run_node(python: str, harness: Path, base: Dict[str, str], root: Path, numbers: range,
             slots: int) -> Tuple[float, Dict[int, int]]:
    """Run the tasks ``numbers`` ``slots`` at a time; the wall time and the count per exit
    code."""
    env = dict(base, PYTHONPATH=os.pathsep.join([str(BENCH), str(harness)]))
    command = [python, "-m", "worker", "run", HANDLER, "--param", "path=in/data.bin",
               "--param", "secret=" + SECRET]
    running: Dict[int, subprocess.Popen] = {}
    codes: Dict[int, int] = collections.Counter()
    started = time.perf_counter()
    for n in numbers:
        while len(running) >= slots:
            pid, status = os.wait()
            if pid in running:
                running.pop(pid)
                codes[os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode")
                      else status >> 8] += 1
        proc = subprocess.Popen(command, cwd=str(BENCH), env=task_env(env, root, n),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        running[proc.pid] = proc
    for proc in running.values():
        codes[proc.wait()] += 1
    return time.perf_counter() - started, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the node venv's python (3.8)")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--slots", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--with-cache-off", action="store_true",
                        help="also this harness with WORKER_TOKEN_CACHE=off (each task asks "
                             "for its own tokens, through the worker's own requests)")
    parser.add_argument("--chunk", type=int, default=250,
                        help="tasks a harness runs before the other takes its turn")
    parser.add_argument("--baseline", default="986649d",
                        help="the commit whose harness is the baseline")
    parser.add_argument("--per-second", type=float, default=20.0,
                        help="token requests the endpoint serves a second per VM (Azure: 20)")
    parser.add_argument("--concurrent", type=int, default=5,
                        help="token requests it serves at once per VM (Azure: 5)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="time the endpoint takes per token request (default 0: the "
                             "emulator's ~1 ms; IMDS takes tens of ms)")
    args = parser.parse_args()
    version = subprocess.run([args.python, "--version"], capture_output=True, text=True)
    limits = Limits(args.concurrent, args.per_second, args.latency_ms / 1000)
    print("%s, %d tasks per run, each a lake read and a secret; identity endpoint limited to "
          "%d at once, %g a second (Azure: 5, 20), %g ms per token request"
          % (version.stdout.strip(), args.tasks, limits.concurrent, limits.per_second,
             args.latency_ms))
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as tmp_name:
        tmp = Path(tmp_name)
        harnesses = {"baseline %s" % args.baseline: (checkout(args.baseline, tmp / "base",
                                                              args.python), {}),
                     "this harness": (REPO, {})}
        if args.with_cache_off:
            harnesses["this, cache off"] = (REPO, {"WORKER_TOKEN_CACHE": "off"})
        subprocess.run([args.python, "-m", "compileall", "-q", str(REPO / "worker"),
                        str(BENCH / "busy_handler.py")], check=True)
        with EmulatorSet(identity_limits=limits) as emulators:
            handle = EmulatorHandle(emulators)
            handle.seed_file("data", "in/data.bin", os.urandom(4096))
            handle.seed_secret(SECRET, "s3cr3t-value-of-the-busy-node")
            print("%-22s %5s %7s %9s %12s %12s  %s" % ("harness", "slots", "wall s", "tasks/s",
                                                      "tokens", "throttled", "exit codes"))
            for slots in args.slots:
                nodes = {}
                for name, (harness, extra) in harnesses.items():
                    run = "%s-%d" % (name.split()[0].strip(","), slots) + (
                        "-off" if extra else "")
                    vm = "node-" + run
                    base = {k: v for k, v in os.environ.items()
                            if k not in CLEARED_VARIABLES and not k.startswith(
                                ("WORKER_", "AZ_BATCH_", "PYTHON"))}
                    base.update(emulators.environment(vm=vm))
                    root = node_root(tmp / run)
                    base.update(AZ_BATCH_NODE_ID=vm, AZ_BATCH_POOL_ID="busy",
                                AZ_BATCH_NODE_SHARED_DIR=str(root / "shared"),
                                WORKER_TASK_SLOTS=str(slots), **extra)
                    nodes[name] = (harness, base, root, vm)
                emulators.identity_app.throttle = Throttle(limits)
                totals = {name: [0.0, collections.Counter()] for name in nodes}
                for first in range(1, args.tasks + 1, args.chunk):
                    numbers = range(first, min(first + args.chunk, args.tasks + 1))
                    for name, (harness, base, root, _) in nodes.items():
                        wall, codes = run_node(args.python, harness, base, root, numbers, slots)
                        totals[name][0] += wall
                        totals[name][1].update(codes)
                for name, (_, _, _, vm) in nodes.items():
                    wall, codes = totals[name]
                    stats = emulators.identity_stats().get(vm, {"served": 0, "throttled": 0})
                    failed = {c: n for c, n in sorted(codes.items()) if c != 0}
                    print("%-22s %5d %7.1f %9.2f %12d %12d  %s" % (
                        name, slots, wall, args.tasks / wall, stats["served"],
                        stats["throttled"], "0 failures" if not failed else
                        ", ".join("%d x exit %d" % (n, c) for c, n in failed.items())),
                        flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
