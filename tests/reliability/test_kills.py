"""SIGKILL at points spread over a task's writes and its commit, then Batch's rerun of the
same task: once the rerun has finished, every final path holds the whole set of outputs,
byte-identical to an uninterrupted run's (also with ``overwrite=False``), and no staging is
left. The kill points are request counts seen by the emulated lake, which adds 10 ms to
every request so that a point falls where it was aimed."""

from __future__ import annotations

import signal
import time

import pytest
from reliability_support import (
    outputs,
    pipeline_args,
    run,
    scale,
    seed_inputs,
    staging,
    start,
    task_env,
)

OUTPUTS = "20"


@pytest.fixture
def reference(tmp_path, emulators, emulator_filesystem, emulator_env):
    """The outputs of an uninterrupted run, and how many lake requests it made."""
    seed_inputs(emulators, emulator_filesystem)
    emulators.seed_file(emulator_filesystem, "out/ref/_folder", b"")
    emulators.reset_counts()
    proc = run(pipeline_args("ref", outputs=OUTPUTS),
               task_env(emulator_env, tmp_path, "kills", "ref"))
    assert proc.returncode == 0, proc.stderr
    requests = sum(emulators.counts("lake").values())
    found = outputs(emulators, emulator_filesystem, "ref")
    assert len(found) == int(OUTPUTS)
    return found, requests


@pytest.mark.parametrize("overwrite", ["yes", "no"])
def test_a_task_killed_anywhere_is_whole_after_its_rerun(
        tmp_path, emulators, emulator_filesystem, emulator_env, reference, overwrite):
    expected, requests = reference
    points = scale(5, 20)
    killed_in_commit = 0
    for k in range(points):
        name = f"{overwrite}-{k:02d}"
        at = max(1, round(requests * (k + 1) / (points + 1)))
        # the folder exists, so the commit moves the files one by one (the longest commit)
        emulators.seed_file(emulator_filesystem, f"out/{name}/_folder", b"")
        env = task_env(emulator_env, tmp_path, "kills", name)
        emulators.fault("lake", "*", "latency", delay=0.01, times=None)
        emulators.reset_counts()
        proc = start(pipeline_args(name, outputs=OUTPUTS, overwrite=overwrite), env)
        _kill_at(proc, emulators, at)
        killed_in_commit += emulators.counts("lake").get("rename", 0) > 0
        emulators.clear_faults()
        rerun = run(pipeline_args(name, outputs=OUTPUTS, overwrite=overwrite), env)
        assert rerun.returncode == 0, f"killed at request {at}: {rerun.stderr[-2000:]}"
        assert outputs(emulators, emulator_filesystem, name) == expected, f"killed at {at}"
        assert staging(emulators, emulator_filesystem) == [], f"killed at {at}"
    assert killed_in_commit, "no kill point fell inside a commit"
    print(f"\n{points} kills ({killed_in_commit} during the commit), overwrite={overwrite}: "
          "every rerun whole")


def _kill_at(proc, emulators, at: int) -> None:
    """SIGKILL ``proc`` once the lake has seen ``at`` requests (or it ended first)."""
    deadline = time.monotonic() + 60
    while sum(emulators.counts("lake").values()) < at and proc.poll() is None:
        assert time.monotonic() < deadline, "the task never reached its kill point"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
