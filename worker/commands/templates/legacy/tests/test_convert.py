"""Tests of the legacy program's job against the emulated Data Lake: the tasks
batch.toml deploys (listed from the lake by `python -m worker spec`, each run as a
process), the same job from handlers.convert, and a program that fails.

The fixtures (emulators, emulator_filesystem, emulator_environ, emulator_env) come with
batch-worker's pytest plugin; each test starts from an empty file system.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from worker.testing import run_handler

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE_LAKE = PROJECT / "data" / "lake"
JANUARY = "id;name;city\n1;Zoë Müller;Zürich\n2;José García;Málaga\n3;Ana Lima;Porto\n"
JANUARY_OUT = "curated/exports/customers-2024-01.csv"


def worker(env, cwd, *args):
    """`python -m worker ARGS` in ``cwd``, with the emulators' variables."""
    command = [sys.executable, "-m", "worker", *args]
    return subprocess.run(
        command, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=120
    )


def test_the_tasks_batch_toml_deploys(
    emulators, emulator_filesystem, emulator_env, tmp_path
):
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))
    specs = tmp_path / "specs"
    app = ["--set", "package.app=test", "--set", "package.version=1"]
    spec = worker(emulator_env, PROJECT, "spec", "tasks", "--out", str(specs), *app)
    assert spec.returncode == 0, spec.stderr
    tasks = json.loads((specs / "tasks-001.json").read_text())
    assert len(tasks) == 2  # one per export file
    for task in tasks:
        # the worker's arguments: after /bin/bash -c '<launcher>' worker-task
        verb, *options = shlex.split(task["commandLine"])[4:]
        record = tmp_path / f"result-{task['id']}.json"
        run = worker(emulator_env, tmp_path, verb, "--result", str(record), *options)
        assert run.returncode == 0, run.stderr
        outputs = json.loads(record.read_text())["outputs"]
        assert [o["source"] for o in outputs] == [options[options.index("--input") + 1]]
    converted = emulators.read_file(emulator_filesystem, JANUARY_OUT)
    assert converted.decode("utf-8") == JANUARY


def test_the_handler_converts_checks_and_commits_every_file(
    emulators, emulator_filesystem, emulator_environ
):
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))
    params = {"pattern": "raw/exports/*.csv", "output": "curated/exports/"}

    result = run_handler("handlers.convert:to_utf8", params)

    assert result.exit_code == 0, result.error
    assert result.return_value == {
        "converted": [
            {"source": "raw/exports/customers-2024-01.csv", "lines": 4},
            {"source": "raw/exports/customers-2024-02.csv", "lines": 3},
        ]
    }
    converted = emulators.read_file(emulator_filesystem, JANUARY_OUT)
    assert converted.decode("utf-8") == JANUARY


def test_a_program_that_fails_commits_nothing(
    emulators, emulator_filesystem, emulator_environ
):
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))
    params = {"pattern": "raw/exports/*.csv", "output": "curated/exports/"}

    result = run_handler("handlers.convert:to_utf8", dict(params, encoding="NO-SUCH"))

    assert result.exit_code == 1  # the program failed
    assert "iconv exited with 1" in result.error["message"]
    assert result.outputs == []
    assert not emulators.exists(emulator_filesystem, JANUARY_OUT)
