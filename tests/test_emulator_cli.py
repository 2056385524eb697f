"""``python -m worker emulate`` as a user runs it, and persistence across a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.storage.filedatalake import DataLakeServiceClient

from worker.emulators import CLEARED_VARIABLES

KEYS = ["WORKER_LAKE_URL", "WORKER_VAULT_URL", "AZURE_CLIENT_ID",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST", "REQUESTS_CA_BUNDLE"]


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "emulate", "--env-file", str(tmp_path / "emu.env"),
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_env(tmp_path: Path, proc: subprocess.Popen) -> Dict[str, str]:
    path = tmp_path / "emu.env"
    deadline = time.monotonic() + 30
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "emulate never became ready"
        time.sleep(0.05)
    env = dict(line.split("=", 1) for line in path.read_text().splitlines())
    path.unlink()
    return env


def _stop(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> str:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return out


def _clients(env: Dict[str, str], monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"], retry_total=0)
    account, filesystem = env["WORKER_LAKE_URL"].rsplit("/", 1)
    lake = DataLakeServiceClient(account, credential=credential, retry_total=0)
    vault = SecretClient(env["WORKER_VAULT_URL"], credential, verify_challenge_resource=False,
                         retry_total=0)
    return lake.get_file_system_client(filesystem), vault


def test_emulate_prints_env_serves_and_stops_on_sigterm(tmp_path, monkeypatch):
    proc = _start(tmp_path)
    env = _wait_env(tmp_path, proc)
    assert list(env) == KEYS
    assert env["WORKER_LAKE_URL"].startswith("https://127.0.0.1:")
    assert env["WORKER_LAKE_URL"].endswith("/devstoreaccount1/data")
    fs, vault = _clients(env, monkeypatch)
    fs.get_file_client("hello.txt").upload_data(b"hi", overwrite=True)
    assert fs.get_file_client("hello.txt").download_file().readall() == b"hi"
    vault.set_secret("k", "v")
    out = _stop(proc)
    assert [line.split("=", 1)[0] for line in out.splitlines()] == KEYS


def test_emulate_with_config_and_data_survives_restart(tmp_path, monkeypatch):
    config = tmp_path / "emu.json"
    config.write_text(json.dumps({
        "account": "myacct", "filesystems": ["raw", "curated"],
        "identities": [{"client_id": "my-app", "lake": [{"filesystem": "*", "access": "rw"}],
                        "secrets": {"get": ["*"], "set": ["*"]}}],
        "secrets": {"db-password": "s3cret"}}))
    data = tmp_path / "state"
    proc = _start(tmp_path, "--config", str(config), "--data", str(data))
    env = _wait_env(tmp_path, proc)
    assert env["AZURE_CLIENT_ID"] == "my-app"
    assert env["WORKER_LAKE_URL"].endswith("/myacct/raw")
    fs, vault = _clients(env, monkeypatch)
    assert vault.get_secret("db-password").value == "s3cret"
    fs.get_file_client("keep/me.txt").upload_data(b"persisted", overwrite=True)
    vault.set_secret("added", "later")
    _stop(proc, signal.SIGINT)

    proc = _start(tmp_path, "--data", str(data), "--config", str(config))
    env2 = _wait_env(tmp_path, proc)
    assert env2["REQUESTS_CA_BUNDLE"] == env["REQUESTS_CA_BUNDLE"]
    fs, vault = _clients(env2, monkeypatch)
    assert fs.get_file_client("keep/me.txt").download_file().readall() == b"persisted"
    assert [p.name for p in fs.get_paths()] == ["keep", "keep/me.txt"]
    assert vault.get_secret("added").value == "later"
    _stop(proc)


def test_bad_config_is_a_usage_error(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text('{"identities": [{"name": "no id"}]}')
    result = subprocess.run([sys.executable, "-m", "worker", "emulate", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "every identity needs a client_id" in result.stderr


def test_in_process_restart_keeps_files_and_secrets(tmp_path, monkeypatch):
    from worker.emulators import EmulatorSet
    from worker.emulators.handle import EmulatorHandle

    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with EmulatorSet(data_dir=str(tmp_path)) as first:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", first.identity_url)
        handle = EmulatorHandle(first)
        handle.service_client().get_file_client("data", "a/b.bin").upload_data(
            b"x" * 100_000, overwrite=True, metadata={"m": "1"})
        handle.secret_client().set_secret("s", "1")
    with EmulatorSet(data_dir=str(tmp_path)) as second:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", second.identity_url)
        handle = EmulatorHandle(second)
        f = handle.service_client().get_file_client("data", "a/b.bin")
        assert f.download_file().readall() == b"x" * 100_000
        assert f.get_file_properties().metadata == {"m": "1"}
        assert handle.secret_client().get_secret("s").value == "1"
