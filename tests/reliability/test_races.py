"""Races: two tasks committing the same outputs at once; one commits, the other exits with
the conflict code (5) and a one-line message, and the final paths hold the winner's whole
set. (Two start tasks at once, and a start task killed half-way then rerun, are in
tests/test_starttask.py: test_two_concurrent_runs_serialise_and_both_succeed and
test_killed_run_leaves_the_old_env_and_the_next_run_finishes.)"""

from __future__ import annotations

import json
import time

import pytest
from reliability_support import outputs, pipeline_args, seed_inputs, staging, start, task_env
from support import last_line


@pytest.mark.parametrize("overwrite", ["yes", "no"])
def test_two_tasks_writing_the_same_outputs_one_commits_the_other_exits_5(
        tmp_path, emulators, emulator_filesystem, emulator_env, overwrite):
    seed_inputs(emulators, emulator_filesystem)
    # The folder exists, so each commit moves its files one by one (5 slow renames) instead
    # of the whole new folder in one: the two commits overlap even on a loaded machine.
    emulators.seed_file(emulator_filesystem, "out/shared/_folder", b"")
    go = tmp_path / "go"
    # The folder exists, so each commit is five renames; slowed down, the two commits
    # overlap for a second even on a busy machine.
    emulators.seed_file(emulator_filesystem, "out/shared/_folder", b"")
    emulators.fault("lake", "rename", "latency", delay=0.2, times=None)
    procs = {}
    for task in ("left", "right"):
        env = task_env(emulator_env, tmp_path, "race", task)
        args = pipeline_args("shared", overwrite=overwrite, hold=str(go), tag=task)
        procs[task] = start(args, env)
    deadline = time.monotonic() + 60  # both have staged their outputs and wait for go
    while any(len(staging(emulators, emulator_filesystem, t)) < 5 for t in procs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs.values())
        time.sleep(0.02)
    go.touch()  # both return together and commit at the same time
    results = {task: (p.wait(60), p.communicate()[1]) for task, p in procs.items()}
    codes = sorted(code for code, _ in results.values())
    assert codes == [0, 5], {t: err[-1500:] for t, (_, err) in results.items()}
    winner = next(t for t, (code, _) in results.items() if code == 0)
    loser_err = next(err for code, err in results.values() if code == 5)
    final = last_line(loser_err)
    assert "exit 5 (commit conflict with another run): CommitConflict: " in final
    assert "Traceback" not in loser_err
    found = outputs(emulators, emulator_filesystem, "shared")
    assert len(found) == 5
    assert json.loads(found["summary.json"])["tag"] == winner, "the winner's whole set"
    assert staging(emulators, emulator_filesystem) == []
