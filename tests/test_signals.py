"""Two-stage shutdown and the deadline, on real processes with real signals."""

from __future__ import annotations

import signal
import time

import pytest
from support import clean_env, last_line, read_result, signal_and_wait, start_worker, wait_for_file

from worker import errors


def start(tmp_path, handler, *args, **env):
    marker = tmp_path / "running"
    lake = tmp_path / "lake"
    proc = start_worker(
        "run", handler, "--param", f"marker={marker}", "--result", str(tmp_path / "r.json"),
        *args, env=clean_env(WORKER_LAKE_URL=lake.as_uri(), **env),
    )
    wait_for_file(marker)
    return proc, lake


def assert_nothing_committed(tmp_path, lake):
    assert not (lake / "out" / "partial.txt").exists()
    staging = lake / ".worker-staging"
    assert not staging.exists() or not any(staging.iterdir()), "staging is cleaned up"
    assert read_result(tmp_path / "r.json")["outputs"] == []


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_first_signal_sets_the_flag_and_a_polling_handler_stops(tmp_path, sig, code):
    proc, lake = start(tmp_path, "handlers.good:polls", "--grace", "20")
    started = time.monotonic()
    rc, _, err = signal_and_wait(proc, sig)
    assert rc == code
    assert time.monotonic() - started < 10, "stopped at its next check, not after the grace"
    record = read_result(tmp_path / "r.json")
    assert record["status"] == "cancelled" and record["exit_code"] == code
    assert record["error"]["type"] == "Cancelled"
    name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
    assert last_line(err).endswith(f"exit {code} (stopped by {name}): Cancelled: stopped by {name}")
    assert_nothing_committed(tmp_path, lake)


def test_a_handler_that_ignores_the_flag_is_interrupted_after_the_grace(tmp_path):
    proc, lake = start(tmp_path, "handlers.good:ignores", "--grace", "1")
    started = time.monotonic()
    rc, _, err = signal_and_wait(proc, signal.SIGTERM)
    elapsed = time.monotonic() - started
    assert rc == errors.SIGTERM
    assert 0.9 <= elapsed < 15
    assert "asking the handler to stop" in err
    assert_nothing_committed(tmp_path, lake)


def test_a_second_signal_stops_at_once(tmp_path):
    proc, lake = start(tmp_path, "handlers.good:ignores", "--grace", "60")
    started = time.monotonic()
    rc, _, _ = signal_and_wait(proc, signal.SIGTERM, signal.SIGTERM)
    assert rc == errors.SIGTERM
    assert time.monotonic() - started < 15, "did not wait for the 60 s grace"
    assert_nothing_committed(tmp_path, lake)


def test_a_handler_that_finishes_within_the_grace_still_commits_nothing(tmp_path):
    proc, lake = start(tmp_path, "handlers.good:finishes_in_grace", "--grace", "20")
    rc, _, _ = signal_and_wait(proc, signal.SIGTERM)
    assert rc == errors.SIGTERM
    assert read_result(tmp_path / "r.json")["status"] == "cancelled"


def test_async_handler_is_cancelled_by_sigterm(tmp_path):
    proc, _ = start(tmp_path, "handlers.good:async_sleeps", "--grace", "0.5")
    rc, _, _ = signal_and_wait(proc, signal.SIGTERM)
    assert rc == errors.SIGTERM
    assert read_result(tmp_path / "r.json")["status"] == "cancelled"


def test_timeout_exits_124(tmp_path):
    from support import run_worker

    result_path = tmp_path / "r.json"
    started = time.monotonic()
    proc = run_worker("run", "handlers.good:sleeps", "--timeout", "0.5", "--grace", "0.5",
                      "--result", str(result_path))
    assert proc.returncode == errors.TIMEOUT
    assert time.monotonic() - started < 20
    record = read_result(result_path)
    assert record["status"] == "timed_out" and record["error"]["type"] == "DeadlineExceeded"
    assert last_line(proc.stderr).endswith(
        "exit 124 (deadline exceeded): DeadlineExceeded: deadline exceeded: the task ran past "
        "its 0.5 s limit (--timeout or WORKER_TIMEOUT); raise the limit, or have the handler "
        "check ctx.time_left() and stop early with what it has done")


def test_timeout_from_the_environment(tmp_path):
    from support import run_worker

    proc = run_worker("run", "handlers.good:sleeps", "--result", str(tmp_path / "r.json"),
                      env=clean_env(WORKER_TIMEOUT="0.3", WORKER_GRACE="0"))
    assert proc.returncode == errors.TIMEOUT
