"""The command line in-process through ``main(argv)``, and start-up costs."""

from __future__ import annotations

import json

import pytest
from support import TESTS_DIR, clean_env, read_result, run_worker

from worker import errors
from worker.cli import main


def test_help_lists_the_commands_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("run", "doctor", "emulate", "143 SIGTERM", "3 transient failure"):
        assert word in out


def test_version(capsys):
    import worker

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"batch-worker {worker.__version__}"


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["run"], ["run", "x:y", "--timeout", "soon"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == errors.USAGE
    assert "usage:" in capsys.readouterr().err


def test_run_in_process(tmp_path, monkeypatch):
    monkeypatch.chdir(TESTS_DIR)
    for name in list(__import__("os").environ):
        if name.startswith(("WORKER_", "AZ_BATCH_")):
            monkeypatch.delenv(name)
    result_path = tmp_path / "result.json"
    code = main(["run", "handlers.good:rollup", "--param", "date=d", "--result", str(result_path)])
    assert code == 0
    assert read_result(result_path)["return_value"]["date"] == "d"


def test_the_harness_imports_no_heavy_library_before_the_handler(tmp_path):
    result_path = tmp_path / "r.json"
    proc = run_worker("run", "handlers.good:heavy_modules_loaded", "--result", str(result_path))
    assert proc.returncode == 0, proc.stderr
    assert read_result(result_path)["return_value"] == []


def test_the_harness_imports_only_what_it_needs_before_the_handler(tmp_path):
    """typing (annotations only), dataclasses (generated code), hashlib (a task key only
    staging needs), signal's enums: each a few percent of every task's start-up on 3.8."""
    for env in (clean_env(), clean_env(AZ_BATCH_JOB_ID="j", AZ_BATCH_TASK_ID="t",
                                       AZ_BATCH_TASK_DIR=str(tmp_path),
                                       AZ_BATCH_TASK_WORKING_DIR=str(tmp_path),
                                       WORKER_TASK_RETRIES="2")):
        result_path = tmp_path / "r.json"
        proc = run_worker("run", "handlers.bare:start_up_modules_loaded", "--result",
                          str(result_path), env=env)
        assert proc.returncode == 0, proc.stderr
        assert read_result(result_path)["return_value"] == []


def test_doctor_offline_reports_every_dependency():
    proc = run_worker("doctor", "--offline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for dist in ("azure-identity", "azure-storage-file-datalake", "azure-keyvault-secrets",
                 "duckdb", "pyarrow"):
        assert f"ok  {dist} " in proc.stdout
    assert proc.stdout.strip().endswith("doctor: all checks passed (offline: the imports only)")


def test_doctor_reports_a_broken_and_a_crashing_import_and_still_checks_the_rest(
    tmp_path, monkeypatch
):
    from worker import doctor

    (tmp_path / "broken_dep.py").write_text("raise ImportError('libfoo.so.1: not found')\n")
    # A native library that segfaults on import, for real: the child dies of SIGSEGV.
    (tmp_path / "crashing_dep.py").write_text(
        "import faulthandler, os, signal\n"
        "faulthandler.disable()  # pytest's, inherited: no dump of the child's stack\n"
        "os.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = [("broken_dep", "broken-dep"), ("crashing_dep", "crashing-dep"), ("json", "json")]
    monkeypatch.setattr(doctor, "RUNTIME_MODULES", modules)
    rows = {dist: (good, detail) for dist, good, detail in doctor.check_imports()}
    assert rows["broken-dep"] == (False, "ImportError: libfoo.so.1: not found")
    assert rows["crashing-dep"][0] is False
    assert "crashed the interpreter" in rows["crashing-dep"][1]
    assert rows["json"] == (True, "?")  # not taken down with the crashed child


def test_secrets_from_a_file_are_redacted_everywhere(tmp_path):
    canary = "canary-Zq9-4f1e-secret"
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"db-password": canary}))
    result_path = tmp_path / "r.json"
    proc = run_worker("run", "handlers.good:reads_secret", "--result", str(result_path),
                      env=clean_env(WORKER_SECRETS_FILE=str(secrets)))
    assert proc.returncode == 0, proc.stderr
    record = read_result(result_path)
    assert record["return_value"] == {"length": len(canary), "echo": "***"}
    assert "connecting with ***" in proc.stderr
    for text in (proc.stdout, proc.stderr, result_path.read_text()):
        assert canary not in text


def test_secrets_from_the_environment_and_a_missing_secret(tmp_path):
    result_path = tmp_path / "r.json"
    env = clean_env(WORKER_SECRET_DB_PASSWORD="from-env-value")
    proc = run_worker("run", "handlers.good:reads_secret", "--result", str(result_path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert read_result(result_path)["return_value"]["length"] == len("from-env-value")
    proc = run_worker("run", "handlers.good:reads_secret", "--param", "name=nope",
                      "--result", str(result_path), env=env)
    assert proc.returncode == errors.USAGE  # a missing secret is a deployment mistake
    message = read_result(result_path)["error"]["message"]
    assert message == (
        "secret 'nope' not found in the environment (WORKER_SECRET_* variables); "
        "set WORKER_SECRET_NOPE or configure WORKER_VAULT_URL"
    )


def test_a_bad_secrets_file_is_a_configuration_error(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text("{not json")
    result_path = tmp_path / "r.json"
    proc = run_worker("run", "handlers.good:reads_secret", "--result", str(result_path),
                      env=clean_env(WORKER_SECRETS_FILE=str(bad)))
    assert proc.returncode == errors.USAGE
    assert read_result(result_path)["error"]["type"] == "ConfigError"
