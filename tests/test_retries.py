"""Batch retries every non-zero exit up to maxTaskRetryCount: a retry of a deterministic
failure (bad input, exit 4; a bad handler spec or parameter, exit 2) ends at once with the
same code and a line saying why, without running the handler; a failure a person may fix
between retries (a missing role) runs again; a reactivated task (a new round of retries)
runs again. Real processes with the variables Batch sets, in one task folder."""

from __future__ import annotations

import json

import pytest
from support import clean_env, last_line, run_worker


def batch_run(tmp_path, handler, *args, retries="2"):
    task_dir = tmp_path / "task"
    (task_dir / "wd").mkdir(parents=True, exist_ok=True)
    env = clean_env(AZ_BATCH_JOB_ID="job", AZ_BATCH_TASK_ID="t1",
                    AZ_BATCH_TASK_DIR=str(task_dir), AZ_BATCH_TASK_WORKING_DIR=str(task_dir / "wd"))
    if retries is not None:
        env["WORKER_TASK_RETRIES"] = retries
    proc = run_worker("run", handler, "--param", "marker=%s" % (tmp_path / "marker"), *args,
                      env=env)
    record = json.loads((task_dir / "wd" / "result.json").read_text())
    return proc, record


def runs(tmp_path):
    return (tmp_path / "marker").read_text().count("ran")


def test_a_retry_of_bad_input_exits_4_at_once_without_running_the_handler(tmp_path):
    first, _ = batch_run(tmp_path, "handlers.retries:bad_input")
    assert first.returncode == 4
    second, record = batch_run(tmp_path, "handlers.retries:bad_input")
    third, _ = batch_run(tmp_path, "handlers.retries:bad_input")
    assert (second.returncode, third.returncode) == (4, 4)
    assert runs(tmp_path) == 1
    assert last_line(second.stderr).endswith(
        "exit 4 (bad input data, retrying will not help): RepeatedFailure: "
        "raw/sales/2024-01-31.csv row 7 has no amount: fix the file; not run again: attempt 1 "
        "failed so (exit 4), and Batch's retries (maxTaskRetryCount 2) would only repeat it: "
        "fix the cause, then python -m worker rerun job --failed (or az batch task reactivate)")
    assert "Traceback" not in second.stderr
    assert record["error"]["code"] == "retry.repeated_failure"
    assert record["task"]["attempt"] == 2
    # the reactivated task starts a new round of 1 + 2 runs: it runs the handler again
    fourth, _ = batch_run(tmp_path, "handlers.retries:bad_input")
    assert fourth.returncode == 4 and runs(tmp_path) == 2
    assert "RepeatedFailure" not in fourth.stderr


def test_a_bad_parameter_is_not_run_again_either(tmp_path):
    first, _ = batch_run(tmp_path, "handlers.retries:bad_input", "--param", "zzz=1")
    assert first.returncode == 2
    second, record = batch_run(tmp_path, "handlers.retries:bad_input", "--param", "zzz=1")
    assert second.returncode == 2
    assert "not run again: attempt 1 failed so (exit 2)" in last_line(second.stderr)
    assert record["exit_code"] == 2


def test_a_missing_role_runs_again_since_a_person_may_grant_it(tmp_path):
    for _ in range(2):
        proc, _ = batch_run(tmp_path, "handlers.retries:denied")
        assert proc.returncode == 2
    assert runs(tmp_path) == 2


@pytest.mark.parametrize("retries", [None, "0"])
def test_without_the_retry_count_or_with_no_retries_every_run_runs(tmp_path, retries):
    """Unknown retry count: never skip. maxTaskRetryCount 0: every run is a new round (a
    rerun is a reactivation or a node recovery)."""
    for _ in range(2):
        proc, _ = batch_run(tmp_path, "handlers.retries:bad_input", retries=retries)
        assert proc.returncode == 4
    assert runs(tmp_path) == 2


def test_a_success_forgets_the_failure(tmp_path):
    first, _ = batch_run(tmp_path, "handlers.retries:fixed_after_first", retries="-1")
    assert first.returncode == 4
    assert (tmp_path / "task" / ".worker-failure").is_file()
    # another command line in the same folder (a different parameter) is not a repeat
    second, record = batch_run(tmp_path, "handlers.retries:fixed_after_first",
                               "--param", "note=fixed", retries="-1")
    assert second.returncode == 0, second.stderr
    assert not (tmp_path / "task" / ".worker-failure").exists()
