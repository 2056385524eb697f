"""``worker.testing.run_handler``: a handler run in the test's own process through the real
runner (params checked, context, commit, result record), against the emulators."""

from __future__ import annotations

import json
import os

import pytest
from handlers import good, lake_tasks

from worker.testing import run_handler


def test_a_spec_runs_commits_and_returns_the_result(emulators, emulator_environ,
                                                    emulator_filesystem, tmp_path):
    result = run_handler("handlers.lake_tasks:writes", result_path=tmp_path / "r.json")
    assert (result.status, result.exit_code, result.error) == ("succeeded", 0, None)
    assert [(o["path"], o["bytes"]) for o in result.outputs] == [
        ("out/a.txt", 5), ("out/empty", 0), ("out/sub/b.bin", 1000)]
    assert emulators.read_file(emulator_filesystem, "out/a.txt") == b"alpha"  # committed
    record = json.loads((tmp_path / "r.json").read_text())
    assert record == json.loads(json.dumps(result.to_dict()))  # the record is the result


def test_a_function_itself_and_typed_params(emulators, emulator_environ):
    result = run_handler(good.typed, {"n": 3, "flag": True, "items": [1, 2]})
    assert result.exit_code == 0, result.error
    assert result.return_value["types"] == ["int", "bool"]
    assert result.return_value["items"] == [1, 2]
    assert result.handler == "handlers.good:typed"


def test_secrets_from_the_emulated_vault_are_read_and_redacted(emulators, emulator_environ):
    emulators.seed_secret("canary", "c4n4ry-value-123")
    result = run_handler(lake_tasks.leaks_secret)
    assert result.exit_code == 1 and result.error["type"] == "RuntimeError"
    assert result.error["message"] == "login failed for secret value ***"
    assert "c4n4ry-value-123" not in json.dumps(result.to_dict())


def test_a_failure_has_the_exit_code_a_task_would_have_and_commits_nothing(
        emulators, emulator_environ, emulator_filesystem):
    result = run_handler("handlers.good:writes_then", {"fail": "yes"})
    assert result.status == "failed" and result.exit_code == 1
    assert not emulators.exists(emulator_filesystem, "out/result.txt")
    result = run_handler("handlers.good:permanent")
    assert (result.exit_code, result.error["type"]) == (4, "PermanentError")
    result = run_handler("handlers.good:typed", {})
    assert (result.exit_code, result.error["code"]) == (2, "params.missing")


def test_env_is_applied_for_the_run_and_restored(emulators, emulator_filesystem, monkeypatch):
    monkeypatch.delenv("WORKER_LAKE_URL", raising=False)
    env = emulators.environment(filesystem=emulator_filesystem)
    result = run_handler("handlers.lake_tasks:writes", env=env)
    assert result.exit_code == 0, result.error
    assert emulators.exists(emulator_filesystem, "out/a.txt")
    assert "WORKER_LAKE_URL" not in os.environ
    result = run_handler("handlers.lake_tasks:writes")  # without it: no lake configured
    assert (result.exit_code, result.error["type"]) == (2, "ConfigError")


def test_a_nested_function_is_refused_with_the_reason():
    def local(ctx):
        return 1

    with pytest.raises(TypeError, match="defined at the top level of an importable module"):
        run_handler(local)
