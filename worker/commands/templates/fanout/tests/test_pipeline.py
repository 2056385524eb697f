"""Tests of handlers.pipeline against the emulated Data Lake: each step, and the job
batch.toml deploys (its fan-out listed from the lake by `python -m worker spec`, as when
the documents are made, then every task it names).

The fixtures (emulators, emulator_filesystem, emulator_environ, emulator_env) come with
batch-worker's pytest plugin; each test starts from an empty file system.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from worker.testing import run_handler

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE_LAKE = PROJECT / "data" / "lake"


def table(emulators, filesystem, path):
    """A parquet file of the emulated lake, as a list of rows."""
    return pq.read_table(io.BytesIO(emulators.read_file(filesystem, path))).to_pylist()


def items_file(emulators, filesystem, days):
    """What `spec` writes for the merge: the items of the fan-out."""
    path = ".worker-jobs/test/items.json"
    items = [f"raw/orders/date={day}" for day in days]
    emulators.seed_file(filesystem, path, json.dumps({"items": items}).encode())
    return path


def worker(env, *args):
    """`python -m worker ARGS` in the project's folder, with the emulators' env."""
    command = [sys.executable, "-m", "worker", *args]
    return subprocess.run(
        command, cwd=str(PROJECT), env=env, capture_output=True, text=True, timeout=120
    )


def test_partition_totals_one_day_per_region(
    emulators, emulator_filesystem, emulator_environ
):
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))

    result = run_handler(
        "handlers.pipeline:partition", {"path": "raw/orders/date=2024-01-31/"}
    )

    assert result.exit_code == 0, result.error
    assert result.return_value == {
        "date": "2024-01-31",
        "regions": 3,
        "output": "curated/daily/2024-01-31.parquet",
    }
    rows = table(emulators, emulator_filesystem, "curated/daily/2024-01-31.parquet")
    assert rows == [
        {"day": "2024-01-31", "region": "apac", "orders": 1, "total": 42.0},
        {"day": "2024-01-31", "region": "eu", "orders": 2, "total": 140.0},
        {"day": "2024-01-31", "region": "us", "orders": 1, "total": 80.0},
    ]


def test_merge_totals_the_days_that_succeeded_and_names_the_others(
    emulators, emulator_filesystem, emulator_environ
):
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))
    for day in ("2024-01-30", "2024-01-31"):  # 2024-02-01's partition "failed"
        path = f"raw/orders/date={day}/"
        assert run_handler("handlers.pipeline:partition", {"path": path}).exit_code == 0
    days = ["2024-01-30", "2024-01-31", "2024-02-01"]
    listed = items_file(emulators, emulator_filesystem, days)

    result = run_handler("handlers.pipeline:merge", {"items_file": listed})

    assert result.exit_code == 0, result.error
    assert result.return_value["missing"] == ["2024-02-01"]
    assert table(emulators, emulator_filesystem, result.return_value["output"]) == [
        {"region": "apac", "days": 1, "orders": 1, "total": 42.0},
        {"region": "eu", "days": 2, "orders": 4, "total": 177.25},
        {"region": "us", "days": 2, "orders": 2, "total": 92.5},
    ]


def test_a_merge_with_no_partition_is_bad_input(
    emulators, emulator_filesystem, emulator_environ
):
    listed = items_file(emulators, emulator_filesystem, ["2024-01-30"])
    result = run_handler("handlers.pipeline:merge", {"items_file": listed})
    assert result.exit_code == 4  # PermanentError: Batch does not retry it
    assert "nothing to merge" in result.error["message"]


def test_the_job_batch_toml_deploys(
    emulators, emulator_filesystem, emulator_env, tmp_path
):
    """`spec tasks` lists the lake as it would for Azure; then each task's command runs
    as a process (the merge last, with the items file spec wrote)."""
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))
    specs = tmp_path / "specs"
    app = ["--set", "package.app=test", "--set", "package.version=1"]
    spec = worker(emulator_env, "spec", "tasks", "--out", str(specs), *app)
    assert spec.returncode == 0, spec.stderr
    tasks = json.loads((specs / "tasks-001.json").read_text())
    assert [t["id"] for t in tasks] == ["1", "2", "3", "merge"]
    for lake_file in (specs / "lake").rglob("*.json"):  # the items file, as deploying
        path = lake_file.relative_to(specs / "lake").as_posix()
        emulators.seed_file(emulator_filesystem, path, lake_file.read_bytes())
    for task in tasks:
        # the worker's arguments: after /bin/bash -c '<launcher>' worker-task
        args = shlex.split(task["commandLine"])[4:]
        record = str(tmp_path / f"result-{task['id']}.json")  # not in the project
        run = worker(emulator_env, *args, "--result", record)
        assert run.returncode == 0, run.stderr
    summary = table(emulators, emulator_filesystem, "curated/summary/local.parquet")
    assert [(row["region"], row["days"], row["orders"]) for row in summary] == [
        ("apac", 2, 2),
        ("eu", 2, 4),
        ("us", 3, 3),
    ]
