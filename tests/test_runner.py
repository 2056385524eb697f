"""Running handlers end to end as real processes: exit codes, result.json, context, logs."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from support import (
    clean_env,
    last_line,
    read_result,
    run_worker,
    signal,
    signal_and_wait,
    start_worker,
    wait_for_file,
)

from worker import errors


def run(tmp_path, *args, env=None):
    result_path = tmp_path / "result.json"
    proc = run_worker("run", *args, "--result", str(result_path), env=env)
    return proc, (read_result(result_path) if result_path.exists() else None)


def test_success_writes_the_result_record(tmp_path):
    proc, record = run(tmp_path, "handlers.good:rollup", "--param", "date=2024-01-31",
                       "--param", "region=eu")
    assert proc.returncode == errors.OK, proc.stderr
    assert record["status"] == "succeeded"
    assert record["exit_code"] == 0 and record["exit_meaning"] == "success"
    assert record["error"] is None
    assert record["return_value"] == {"date": "2024-01-31", "region": "eu", "attempt": 1}
    assert record["params"] == {"date": "2024-01-31", "region": "eu"}
    assert record["outputs"] == []
    assert record["started_at"].endswith("Z") and record["ended_at"].endswith("Z")
    assert 0 <= record["duration_s"] < 30
    assert "task succeeded" in last_line(proc.stderr)


def test_param_values_keep_their_json_type_from_files_and_are_strings_from_flags(tmp_path):
    params_file = tmp_path / "p.json"
    params_file.write_text(json.dumps({"n": 3, "flag": True, "items": [1, 2]}))
    _, record = run(tmp_path, "handlers.good:typed", "--params-file", str(params_file))
    assert record["return_value"]["types"] == ["int", "bool"]
    assert record["return_value"]["items"] == [1, 2]
    _, record = run(tmp_path, "handlers.good:typed", "--params-json", '{"n": 1.5}',
                    "--param", "flag=yes")
    assert record["return_value"]["types"] == ["float", "str"]
    _, record = run(tmp_path, "handlers.good:typed", "--params-file", str(params_file),
                    "--param", "n=7")
    assert record["return_value"]["n"] == "7"  # --param wins and is a string


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--param", "novalue"], "params.bad_format", "--param 'novalue' is not KEY=VALUE"),
        (["--params-json", "{bad"], "params.bad_json", "--params-json is not valid JSON"),
        (["--params-json", "[1]"], "params.bad_json", "must be a JSON object"),
        (["--params-file", "/no/such/file.json"], "params.file", "cannot be read"),
        (["--param", "zzz=1", "--param", "n=1"], "params.unknown", "does not accept parameter(s) 'zzz'"),
        ([], "params.missing", "requires parameter(s) 'n'"),
    ],
)
def test_bad_parameters_are_usage_errors_before_the_handler_runs(tmp_path, args, code, message):
    proc, record = run(tmp_path, "handlers.good:typed", *args)
    assert proc.returncode == errors.USAGE
    assert record["error"]["code"] == code
    assert message in record["error"]["message"]
    assert message in last_line(proc.stderr)
    assert "Traceback" not in proc.stderr


def test_handler_exception_exits_1_with_the_handlers_traceback_only(tmp_path):
    proc, record = run(tmp_path, "handlers.good:fails_nested")
    assert proc.returncode == errors.HANDLER_ERROR
    assert record["status"] == "failed"
    assert record["error"] == {"type": "KeyError", "code": "handler_error", "message": "'deep'"}
    trace = proc.stderr[proc.stderr.index("Traceback"):]
    frames = re.findall(r'File "([^"]+)"', trace)
    assert frames and all(f.endswith("handlers/good.py") for f in frames), frames
    assert last_line(proc.stderr).endswith(
        "exit 1 (a bug in the handler, or a program it ran failed): KeyError: 'deep'; fix the "
        "handler where its traceback above points"
    )


@pytest.mark.parametrize(
    "handler, code, meaning",
    [
        ("handlers.good:retryable", errors.RETRYABLE, "transient failure, worth a retry"),
        ("handlers.good:permanent", errors.PERMANENT, "bad input data"),
    ],
)
def test_retryable_and_permanent_errors_have_their_exit_codes(tmp_path, handler, code, meaning):
    proc, record = run(tmp_path, handler)
    assert proc.returncode == code
    assert record["exit_code"] == code
    assert meaning in record["exit_meaning"]
    assert f"exit {code} ({meaning}" in last_line(proc.stderr)


def test_async_handler_runs(tmp_path):
    proc, record = run(tmp_path, "handlers.good:async_rollup", "--param", "n=5")
    assert proc.returncode == 0, proc.stderr
    assert record["return_value"] == {"async": True, "n": 5}


def test_file_path_handler_runs(tmp_path):
    proc, record = run(tmp_path, "handlers/good.py:no_context")
    assert proc.returncode == 0, proc.stderr
    assert record["return_value"] == "no context needed"


def test_unserialisable_return_value_is_recorded_as_repr(tmp_path):
    _, record = run(tmp_path, "handlers.good:returns_unserialisable")
    assert record["return_value"] is None
    assert record["return_value_repr"].startswith("<object object at")


def batch_env(tmp_path, **extra):
    task_dir = tmp_path / "task"
    (task_dir / "wd").mkdir(parents=True, exist_ok=True)
    (tmp_path / "shared").mkdir(exist_ok=True)
    return clean_env(
        AZ_BATCH_JOB_ID="job-1", AZ_BATCH_TASK_ID="task-7", AZ_BATCH_NODE_ID="tvm-1",
        AZ_BATCH_POOL_ID="pool-a", AZ_BATCH_TASK_DIR=str(task_dir),
        AZ_BATCH_TASK_WORKING_DIR=str(task_dir / "wd"),
        AZ_BATCH_NODE_SHARED_DIR=str(tmp_path / "shared"), **extra,
    )


def test_context_reads_batch_metadata_and_counts_attempts(tmp_path):
    env = batch_env(tmp_path)
    first = run_worker("run", "handlers.good:context_info", env=env)
    assert first.returncode == 0, first.stderr
    wd = tmp_path / "task" / "wd"
    value = read_result(wd / "result.json")["return_value"]  # default: the working dir
    assert value["job_id"] == "job-1" and value["task_id"] == "task-7"
    assert value["node_id"] == "tvm-1" and value["pool_id"] == "pool-a"
    assert value["working_dir"] == str(wd)
    assert value["shared_dir"] == str(tmp_path / "shared")
    assert value["attempt"] == 1 and value["time_left"] is None
    assert value["scratch"].startswith(str(tmp_path / "task"))
    from pathlib import Path

    assert not Path(value["scratch"]).exists(), "scratch is removed after the task"
    run_worker("run", "handlers.good:context_info", env=env)
    record = read_result(wd / "result.json")
    assert record["return_value"]["attempt"] == 2
    assert record["task"]["attempt"] == 2 and record["task"]["job_id"] == "job-1"


def test_off_batch_the_context_has_local_defaults(tmp_path):
    _, record = run(tmp_path, "handlers.good:context_info", "--timeout", "60")
    value = record["return_value"]
    assert (value["job_id"], value["task_id"], value["attempt"]) == ("local", "local", 1)
    assert 0 < value["time_left"] <= 60


def test_text_logs_carry_utc_time_ids_and_capture_handler_logging(tmp_path):
    proc = run_worker("run", "handlers.good:logs_own", env=batch_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if "from a library 7" in x)
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING job-1/task-7 thirdparty\.lib: ", line
    )
    assert "job-1/task-7 handlers.good: from the handler" in proc.stderr
    assert "plain print to stdout" in proc.stdout


@pytest.mark.parametrize("how", ["flag", "env"])
def test_json_logs(tmp_path, how):
    env = batch_env(tmp_path, **({"WORKER_LOG_FORMAT": "json"} if how == "env" else {}))
    args = ["--log-format", "json"] if how == "flag" else []
    proc = run_worker("run", "handlers.good:logs_own", *args, env=env)
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert all(r["job_id"] == "job-1" and r["task_id"] == "task-7" for r in records)
    assert all(r["ts"].endswith("Z") for r in records)
    mine = next(r for r in records if r["msg"] == "from the handler")
    assert mine["logger"] == "handlers.good" and mine["rows"] == 3
    assert records[-1]["msg"].startswith("task succeeded")


def test_bad_configuration_is_exit_2_with_one_line(tmp_path):
    proc = run_worker("run", "handlers.good:rollup", env=clean_env(WORKER_LOG_FORMAT="yaml"))
    assert proc.returncode == errors.USAGE
    assert last_line(proc.stderr).endswith(
        "WORKER_LOG_FORMAT='yaml' is not valid; use one of: text, json (exit 2)"
    )


def test_outputs_are_committed_on_success_only(tmp_path):
    lake = tmp_path / "lake"
    env = clean_env(WORKER_LAKE_URL=lake.as_uri())
    result_path = tmp_path / "r.json"
    proc = run_worker("run", "handlers.good:writes_then", "--param", "fail=yes",
                      "--result", str(result_path), env=env)
    assert proc.returncode == 1
    assert not (lake / "out" / "result.txt").exists()
    assert not (lake / ".worker-staging").exists() or not any((lake / ".worker-staging").iterdir())
    assert read_result(result_path)["outputs"] == []
    proc = run_worker("run", "handlers.good:writes_then", "--result", str(result_path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (lake / "out" / "result.txt").read_text() == "done"
    outputs = read_result(result_path)["outputs"]
    md5 = hashlib.md5(b"done").hexdigest()
    assert outputs == [{"path": "out/result.txt", "bytes": 4, "md5": md5}]


def test_an_error_marked_commit_staged_commits_first_then_fails(tmp_path):
    """The one exception to "a failed task commits nothing" (exec --keep-partial)."""
    lake = tmp_path / "lake"
    env = clean_env(WORKER_LAKE_URL=lake.as_uri())
    result_path = tmp_path / "r.json"
    proc = run_worker("run", "handlers.good:fails_keeping_outputs", "--result",
                      str(result_path), env=env)
    assert proc.returncode == errors.PERMANENT, proc.stderr
    assert (lake / "out" / "kept.txt").read_text() == "kept"
    record = read_result(result_path)
    assert record["status"] == "failed" and record["exit_code"] == errors.PERMANENT
    assert record["error"]["message"] == "3 of 10 rows were bad"
    assert [o["path"] for o in record["outputs"]] == ["out/kept.txt"]
    assert "commits what it staged: 3 of 10 rows were bad" in proc.stderr
    assert last_line(proc.stderr).endswith("PermanentError: 3 of 10 rows were bad")


def test_commit_staged_commits_nothing_when_a_stop_was_asked(tmp_path):
    lake = tmp_path / "lake"
    marker = tmp_path / "waiting"
    proc = start_worker("run", "handlers.good:fails_keeping_outputs", "--param",
                        f"marker={marker}", "--result", str(tmp_path / "r.json"),
                        env=clean_env(WORKER_LAKE_URL=lake.as_uri()))
    wait_for_file(marker)
    rc, _, err = signal_and_wait(proc, signal.SIGTERM)
    assert rc == errors.PERMANENT, err  # the handler's own error, as for any handler
    assert "not committing 1 staged write(s): ['out/kept.txt']" in err
    assert not (lake / "out" / "kept.txt").exists()
    assert read_result(tmp_path / "r.json")["outputs"] == []


def test_when_the_commit_of_a_commit_staged_failure_fails_that_is_the_error(tmp_path):
    lake = tmp_path / "lake"
    (lake / "out").mkdir(parents=True)
    (lake / "out" / "kept.txt").write_text("another task's")
    result_path = tmp_path / "r.json"
    proc = run_worker("run", "handlers.good:fails_keeping_outputs", "--param", "overwrite=no",
                      "--result", str(result_path), env=clean_env(WORKER_LAKE_URL=lake.as_uri()))
    assert proc.returncode == errors.CONFLICT, proc.stderr
    assert (lake / "out" / "kept.txt").read_text() == "another task's"
    assert read_result(result_path)["error"]["type"] == "CommitConflict"
    assert "commits what it staged: 3 of 10 rows were bad" in proc.stderr


def test_on_batch_the_result_record_is_copied_to_the_jobs_folder_in_the_lake(tmp_path):
    lake = tmp_path / "lake"
    env = batch_env(tmp_path, WORKER_LAKE_URL=lake.as_uri())
    proc = run_worker("run", "handlers.good:rollup", "--param", "date=2024-01-31", env=env)
    assert proc.returncode == 0, proc.stderr
    copy = lake / ".worker-jobs" / "job-1" / "results" / "task-7.json"
    local = tmp_path / "task" / "wd" / "result.json"
    assert copy.read_bytes() == local.read_bytes()
    assert json.loads(copy.read_text())["status"] == "succeeded"
    proc = run_worker("run", "handlers.good:rollup", "--param", "nope=1", env=env)
    assert proc.returncode == errors.USAGE
    record = json.loads(copy.read_text())
    assert record["status"] == "failed" and record["error"]["code"].startswith("params")
    assert copy.read_bytes() == local.read_bytes()


def test_a_lake_that_cannot_take_the_record_copy_changes_nothing_but_a_warning(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the lake's folder would be")
    env = batch_env(tmp_path, WORKER_LAKE_URL=(blocker / "lake").as_uri())
    proc = run_worker("run", "handlers.good:rollup", "--param", "date=2024-01-31", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "could not copy the result record to the lake at " \
           ".worker-jobs/job-1/results/task-7.json" in proc.stderr
    assert "task succeeded" in last_line(proc.stderr)
    assert read_result(tmp_path / "task" / "wd" / "result.json")["status"] == "succeeded"


def test_off_batch_no_record_goes_to_the_lake(tmp_path):
    lake = tmp_path / "lake"
    proc, record = run(tmp_path, "handlers.good:rollup", "--param", "date=2024-01-31",
                       env=clean_env(WORKER_LAKE_URL=lake.as_uri()))
    assert proc.returncode == 0 and record["status"] == "succeeded"
    assert not (lake / ".worker-jobs").exists()


def test_a_secret_that_is_an_ordinary_word_leaves_the_record_s_field_names_alone():
    """Secrets are masked in everything the record holds, but its own field names are its
    schema: a secret "value" or "status" must not turn "return_value" into "return_***"."""
    from worker.redact import forget_all, register_secret
    from worker.result import Result

    result = Result(handler="h:f", started=0.0, params={"value": "the value", "n": 1})
    result.status, result.exit_code = "succeeded", 0
    result.return_value = {"status": "status ok"}
    register_secret("value")
    register_secret("status")
    try:
        record = result.to_dict()
    finally:
        forget_all()
    assert {"status", "exit_code", "params", "return_value"} <= set(record)
    assert record["status"] == "succeeded"
    assert record["params"] == {"***": "the ***", "n": 1}
    assert record["return_value"] == {"***": "*** ok"}
