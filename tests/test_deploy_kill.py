"""A deploy killed at random points (a real process, SIGKILL) and run again finishes the job
with exactly one task per item and each task's definition, against the local Batch service.

The kill points are drawn from a seeded generator over the time an uninterrupted deploy of
the same job takes, so they fall before the job exists, between collections, and after the
last one (before the job is told to end). azure-batch 15 needs Python >= 3.9: skipped on 3.8.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 9),
                                reason="the deploy loop needs azure-batch 15 (Python >= 3.9)")

ITEMS = 1000
SPEC = """
[package]
app = "mini"
version = "1.0.0"

[pool]
id = "nopool"
client_id = "00000000-0000-0000-0000-000000000001"

[job]
id = "%s"

[tasks]
items = { range = [1, %d] }
command = ["run", "handlers.good:rollup", "--param", "date={item}"]
"""


def deploy(env, spec: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "worker", "deploy", "--job-only", "--spec",
                             str(spec)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def until_job_line(proc: subprocess.Popen) -> float:
    """Read deploy's stdout until its job line (the job exists); when that was."""
    for line in proc.stdout:
        if line.startswith("  job "):
            return time.monotonic()
    raise AssertionError("deploy ended before its job line: %s" % proc.stderr.read())


def test_a_deploy_killed_anywhere_and_run_again_leaves_one_task_per_item(
        batch_service, tmp_path):
    env = dict(os.environ, **batch_service.environment())
    env.pop("WORKER_LAKE_URL", None)
    client = batch_service.client()

    reference = tmp_path / "reference.toml"
    reference.write_text(SPEC % ("reference", ITEMS))
    started = time.monotonic()
    proc = deploy(env, reference)
    to_job = until_job_line(proc) - started
    out, err = proc.communicate(timeout=300)
    adding = time.monotonic() - started - to_job
    assert proc.returncode == 0, err

    spec = tmp_path / "batch.toml"
    spec.write_text(SPEC % ("killed", ITEMS))
    draw = random.Random(20261204)
    kills = []  # (where, seconds into it, tasks in the job then)
    for _ in range(7):
        proc = deploy(env, spec)
        phase = draw.choice(["start", "adding", "adding", "adding"])
        delay = draw.uniform(0.05, to_job if phase == "start" else adding)
        if phase == "adding":
            until_job_line(proc)
        try:
            proc.wait(timeout=delay)
            proc.communicate()
            continue
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        tasks = sum(1 for _ in client.list_tasks("killed", select=["id"])) \
            if _exists(client, "killed") else None
        kills.append((phase, round(delay, 2), tasks))
    print("kills (phase, seconds, tasks):", kills)
    assert len(kills) >= 5, kills  # most runs were cut short
    assert any(0 < (k[2] or 0) < ITEMS for k in kills), kills  # some between collections
    proc = deploy(env, spec)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    ids = [t.id for t in client.list_tasks("killed", select=["id"])]
    assert sorted(ids, key=int) == [str(n) for n in range(1, ITEMS + 1)], kills
    theirs = {t.id: t.command_line for t in client.list_tasks("reference",
                                                              select=["id", "commandLine"])}
    ours = {t.id: t.command_line for t in client.list_tasks("killed",
                                                            select=["id", "commandLine"])}
    assert ours == theirs
    job = client.get_job("killed")
    assert str(job.as_dict()["onAllTasksComplete"]).lower() == "terminatejob"


def _exists(client, job_id: str) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        client.get_job(job_id)
        return True
    except ResourceNotFoundError:
        return False
