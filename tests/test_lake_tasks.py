"""Real ``python -m worker run`` processes against the emulators: commit on success, nothing
committed on failure or SIGTERM, secrets redacted everywhere, transient faults -> exit 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from support import (
    last_line,
    read_result,
    run_worker,
    signal_and_wait,
    start_worker,
    wait_for_file,
)

FAST = {"WORKER_RETRY_BACKOFF": "0", "WORKER_RETRY_TOTAL": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def env(emulator_env):
    return dict(emulator_env, **FAST)


def paths(emulators, filesystem):
    return sorted(emulators.set.lake_app.store.filesystems[filesystem].paths)


def assert_nothing_committed(emulators, filesystem):
    left = paths(emulators, filesystem)
    assert not [p for p in left if p.startswith("out")], left
    assert not [p for p in left if p.startswith(".worker-staging/")], "staging cleaned up"


def test_outputs_are_committed_and_recorded(tmp_path, env, emulators, emulator_filesystem):
    proc = run_worker("run", "handlers.lake_tasks:writes", "--result", str(tmp_path / "r.json"),
                      env=env)
    assert proc.returncode == 0, proc.stderr
    record = read_result(tmp_path / "r.json")
    assert [(o["path"], o["bytes"]) for o in record["outputs"]] == [
        ("out/a.txt", 5), ("out/empty", 0), ("out/sub/b.bin", 1000)]
    assert record["outputs"][0]["md5"] == "2c1743a391305fbf367df8e4f069f9f9"
    assert emulators.read_file(emulator_filesystem, "out/a.txt") == b"alpha"
    assert emulators.read_file(emulator_filesystem, "out/empty") == b""
    assert not [p for p in paths(emulators, emulator_filesystem)
                if p.startswith(".worker-staging/")]


def test_no_cryptography_deprecation_lines_on_any_python(tmp_path, env):
    """cryptography warns on every import under Python 3.8; a task's stderr shows none of it
    (the warning is filtered by its message, the task above imported the Azure SDKs)."""
    proc = run_worker("run", "handlers.lake_tasks:writes", "--result", str(tmp_path / "r.json"),
                      env=env)
    assert proc.returncode == 0, proc.stderr
    assert "CryptographyDeprecationWarning" not in proc.stderr
    assert "no longer supported" not in proc.stderr
    bare = subprocess.run([sys.executable, "-c", "import azure.identity, azure.storage.blob"],
                          capture_output=True, text=True, env=env)
    if sys.version_info[:2] == (3, 8):  # without the worker the same imports do warn
        assert "CryptographyDeprecationWarning" in bare.stderr


def test_a_failing_handler_commits_nothing(tmp_path, env, emulators, emulator_filesystem):
    local = tmp_path / "up.bin"
    local.write_bytes(b"u" * 5000)
    proc = run_worker("run", "handlers.lake_tasks:writes_then_fails", "--param",
                      f"local={local}", "--result", str(tmp_path / "r.json"), env=env)
    assert proc.returncode == 1
    assert read_result(tmp_path / "r.json")["outputs"] == []
    assert_nothing_committed(emulators, emulator_filesystem)


def test_sigterm_commits_nothing_and_cleans_staging(tmp_path, env, emulators,
                                                    emulator_filesystem):
    marker = tmp_path / "running"
    proc = start_worker("run", "handlers.good:polls", "--param", f"marker={marker}",
                        "--result", str(tmp_path / "r.json"), env=env)
    wait_for_file(marker)
    assert any(p.startswith(".worker-staging/") for p in paths(emulators, emulator_filesystem))
    rc, _, err = signal_and_wait(proc, signal.SIGTERM)
    assert rc == 143, err
    assert read_result(tmp_path / "r.json")["status"] == "cancelled"
    assert_nothing_committed(emulators, emulator_filesystem)


def test_a_canary_secret_never_appears_in_any_output(tmp_path, env, emulators):
    canary = "canary-7Hq2-" + tmp_path.name[-6:] + "-xyzzy"
    emulators.seed_secret("canary", canary)
    result = tmp_path / "r.json"
    for log_format in ("text", "json"):
        proc = run_worker("run", "handlers.lake_tasks:leaks_secret", "--result", str(result),
                          env=dict(env, WORKER_LOG_FORMAT=log_format))
        assert proc.returncode == 1, proc.stderr
        record = result.read_text()
        for where, text in (("stdout", proc.stdout), ("stderr", proc.stderr),
                            ("result.json", record)):
            assert canary not in text, f"the secret leaked into {where} ({log_format})"
        assert "***" in proc.stderr
        assert json.loads(record)["error"]["message"] == "login failed for secret value ***"


def test_a_persistent_transient_fault_exits_3(tmp_path, env, emulators, emulator_filesystem):
    emulators.seed_file(emulator_filesystem, "in/x.txt", b"x")
    emulators.fault("lake", "read", "status", status=503, times=None)
    proc = run_worker("run", "handlers.lake_tasks:reads", "--param", "path=in/x.txt",
                      "--result", str(tmp_path / "r.json"), env=env)
    assert proc.returncode == 3, proc.stderr
    record = read_result(tmp_path / "r.json")
    assert record["error"]["type"] == "RetryableError"
    assert "exit 3 (transient failure, worth a retry)" in last_line(proc.stderr)


def test_a_missing_secret_is_a_clear_message_not_a_traceback(tmp_path, env):
    proc = run_worker("run", "handlers.good:reads_secret", "--param", "name=nope",
                      "--result", str(tmp_path / "r.json"), env=env)
    assert proc.returncode == 2  # configuration: create the secret or fix its name
    assert "secret 'nope' not found in the Key Vault https://127.0.0.1:" in last_line(proc.stderr)


def test_doctor_online_against_the_emulators_prints_no_token(env, emulators):
    proc = run_worker("doctor", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "ok  credential: DefaultAzureCredential" in out
    assert "ok  token for storage (https://storage.azure.com/.default)" in out
    assert ", from ManagedIdentityCredential" in out  # the member of the chain that answered
    assert "ok  token for Key Vault (https://vault.azure.net/.default)" in out
    assert "answers" in out and "doctor: all checks passed" in out
    assert emulators.counts("identity"), "tokens were really requested"
    assert "eyJ" not in out + proc.stderr  # no token (a JWT) of any kind


def test_a_flat_account_is_refused_by_the_doctor_and_by_the_first_commit(
        tmp_path, env, emulators, emulator_filesystem):
    """On a flat (non-hierarchical) account a folder rename is a copy and delete per file
    and may move part of a folder: the doctor says so, and a task commits nothing (exit 2)
    instead of risking a partial set."""
    emulators.lake_behaviour(flat_namespace=True)
    proc = run_worker("doctor", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "BAD lake https://127.0.0.1:" in proc.stdout
    assert ": hierarchical namespace: ConfigError: the storage account of the lake " \
           in proc.stdout and "has no hierarchical namespace" in proc.stdout
    proc = run_worker("run", "handlers.lake_tasks:writes", "--result", str(tmp_path / "r.json"),
                      env=env)
    line = last_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert "exit 2" in line and "has no hierarchical namespace" in line
    assert "WORKER_LAKE_URL" in line and "hns-migration" in line
    assert read_result(tmp_path / "r.json")["error"]["code"] == "config.flat_namespace"
    assert_nothing_committed(emulators, emulator_filesystem)


def test_doctor_names_the_failing_check_and_the_fix(env):
    unknown = "99999999-0000-0000-0000-0000000000aa"
    env = dict(env, AZ_BATCH_NODE_ID="tvm-1", AZURE_CLIENT_ID=unknown)
    proc = run_worker("doctor", env=env)
    assert proc.returncode == 2
    assert "BAD token for storage" in proc.stdout
    assert "fix: assign the user-assigned managed identity to the pool" in proc.stdout
    assert "checks FAILED (see above)" in proc.stdout


def test_a_task_never_imports_the_storage_sdk(tmp_path, env):
    """Listing, reading, downloading, small and big writes, deletes and the commit (claim,
    record, renames, clean-up) are plain REST calls: the storage SDK, about 0.3 s of a
    task's start on Python 3.8, is not loaded."""
    (tmp_path / "up").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "up" / name).write_text(name)
    big = os.urandom(200 * 1024)  # several pieces of the chunk size below
    (tmp_path / "up" / "big.bin").write_bytes(big)
    env = dict(env, WORKER_LAKE_CHUNK_SIZE="65536")
    code = f"""
import sys
from worker.config import Config
from worker.lake import Lake, open_store
lake = Lake(open_store(Config.from_env().lake_url), "job/task")
lake.write_text("in/x.txt", "x")
lake.upload({str(tmp_path / "up")!r}, "in/up")
lake.commit()
assert lake.exists("in/x.txt") and lake.info("in/up").is_dir
assert sorted(f.path for f in lake.ls("in", recursive=True)) == [
    "in/up", "in/up/a.csv", "in/up/b.csv", "in/up/big.bin", "in/x.txt"]
assert lake.read_bytes("in/up/a.csv") == b"a.csv"
assert lake.read_bytes("in/up/big.bin") == open({str(tmp_path / "up" / "big.bin")!r}, "rb").read()
lake.download("in/up", {str(tmp_path / "down")!r})
lake.delete("in/x.txt")
lake.write_bytes("out/y.bin", b"y" * 1000)
lake.write_bytes("out/z.bin", b"z" * 300000)
lake.commit()
assert not lake.exists("in/x.txt") and lake.read_bytes("out/y.bin") == b"y" * 1000
assert lake.read_bytes("out/z.bin") == b"z" * 300000
print(sorted(m for m in sys.modules if m.startswith("azure.storage")))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert sorted(p.name for p in (tmp_path / "down").iterdir()) == ["a.csv", "b.csv", "big.bin"]
    assert (tmp_path / "down" / "big.bin").read_bytes() == big
