"""What the reliability tests share: the pipeline's inputs, a Batch-like task environment,
views of the emulated lake's final paths and staging area, and how many runs to make.

The reliability suite probes the guarantees of docs/guarantees.md from outside, through real processes, real
signals and the emulators' fault rules. Short variants run in CI; ``WORKER_RELIABILITY=long``
runs the long ones whose figures are in bench/RESULTS.md (e.g.
``WORKER_RELIABILITY=long bash tests/run.sh tests/reliability``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

from support import worker_cmd

from worker.lake import STAGING_DIR

FAST = {"WORKER_RETRY_BACKOFF": "0", "WORKER_RETRY_TOTAL": "2", "PYTHONUNBUFFERED": "1",
        "WORKER_GRACE": "2"}
PIPELINE = "handlers.reliability:pipeline"
TESTS_DIR = Path(__file__).resolve().parent.parent
LONG = os.environ.get("WORKER_RELIABILITY") == "long"


def scale(short: int, long: int) -> int:
    """How many runs a test makes: ``short`` in CI, ``long`` with WORKER_RELIABILITY=long."""
    return long if LONG else short


def seed_inputs(emulators, filesystem: str) -> None:
    """Three CSV inputs and the pipeline's secret."""
    for day in range(3):
        rows = "".join(f"r{day}-{i},{(day * 31 + i * 7) % 100 / 4}\n" for i in range(40))
        emulators.seed_file(filesystem, f"inputs/day-{day}.csv", ("id,amount\n" + rows).encode())
    emulators.seed_secret("pipeline-key", "k3y-for-the-pipeline")


def task_env(base: Dict[str, str], tmp: Path, job: str, task: str) -> Dict[str, str]:
    """The variables Batch sets for task ``task`` of ``job`` (its folders under ``tmp``)."""
    task_dir = tmp / job / task
    (task_dir / "wd").mkdir(parents=True, exist_ok=True)
    return dict(base, **FAST, AZ_BATCH_JOB_ID=job, AZ_BATCH_TASK_ID=task,
                AZ_BATCH_NODE_ID="tvm-local", AZ_BATCH_POOL_ID="pool",
                AZ_BATCH_TASK_DIR=str(task_dir), AZ_BATCH_TASK_WORKING_DIR=str(task_dir / "wd"))


def pipeline_args(run: str, **params: str) -> List[str]:
    args = ["run", PIPELINE, "--param", f"run={run}"]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    return args


def start(args: List[str], env: Dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(worker_cmd(*args), cwd=str(TESTS_DIR), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(args: List[str], env: Dict[str, str], timeout: float = 120
        ) -> subprocess.CompletedProcess:
    return subprocess.run(worker_cmd(*args), cwd=str(TESTS_DIR), env=env, timeout=timeout,
                          capture_output=True, text=True)


def outputs(emulators, filesystem: str, run_name: str) -> Dict[str, bytes]:
    """The files at the final paths below out/<run>/, by their name in that folder."""
    prefix = f"out/{run_name}/"
    nodes = emulators.set.lake_app.store.filesystems[filesystem].paths
    return {path[len(prefix):]: bytes(node.data) for path, node in sorted(nodes.items())
            if path.startswith(prefix) and not node.is_dir and not
            path[len(prefix):].startswith("_")}


def staging(emulators, filesystem: str, task: Optional[str] = None) -> List[str]:
    """Files (not folders) left in the staging area."""
    nodes = emulators.set.lake_app.store.filesystems[filesystem].paths
    return sorted(p for p, n in nodes.items() if p.startswith(STAGING_DIR + "/")
                  and not n.is_dir and (task is None or f"/{task}/" in p))
