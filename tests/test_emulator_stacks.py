"""The client stacks people reach for, against the emulators with the env file alone.

fsspec with adlfs and obstore each run in a process of their own whose environment is
exactly the emulators' env file over a clean one (``tests/stacks/``): what the docs promise,
"load the env file and the client works", is what runs. Each stack reads files the DataLake
SDK and ``ctx.lake`` wrote, and the test reads what the stack wrote with both, byte for
byte. The Blob SDK's own tests are ``test_emulator_blob.py``; its cross-reads are here.

adlfs and obstore are in the dev lock for Python 3.9 and newer only: on 3.8 their tests are
skipped (CI runs them on 3.12).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
from stacks.payload import digest, payload

from worker import envfile
from worker.emulators import CLEARED_VARIABLES
from worker.testing import run_handler

STACKS = Path(__file__).resolve().parent / "stacks"
SEEDED = {"seeded/dfs.bin": 300_000, "seeded/lake.bin": 300_000}


def _needs(module: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None,
        reason="%s is in the dev lock for Python 3.9 and newer only (this is %d.%d)"
        % (module, *sys.version_info[:2]))


@pytest.fixture
def seeded(emulators, emulator_environ, emulator_filesystem):
    """A file system holding a file the DataLake SDK wrote (create, append, flush) and one
    ctx.lake wrote."""
    fs = emulator_filesystem
    client = emulators.service_client().get_file_system_client(fs)
    client.get_file_client("seeded/dfs.bin").upload_data(payload("seeded/dfs.bin", 300_000),
                                                         overwrite=True)
    result = run_handler("handlers.stacks:write", {"path": "seeded/lake.bin", "size": 300_000})
    assert result.exit_code == 0, result.error
    return fs


def _stack(emulators, fs: str, *argv: str) -> Dict:
    """Run a stack script with the env file's variables over a clean environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in CLEARED_VARIABLES and not k.startswith(("AZURE_", "FSSPEC_"))}
    text = envfile.format_environment(emulators.environment(filesystem=fs, app_service=True))
    env.update(envfile.parse(text))  # what `set -a; . .emulators.env` gives
    proc = subprocess.run([sys.executable, str(STACKS / argv[0]), fs, *argv[1:]], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _expect_read(report: Dict) -> None:
    assert report["failures"] == {}
    assert report["digests"] == {"read:" + p: digest(payload(p, n)) for p, n in SEEDED.items()}


def _read_back(emulators, fs: str, written: Dict[str, int]) -> None:
    """What a stack wrote, read by the DataLake SDK and by ctx.lake, byte for byte."""
    client = emulators.service_client().get_file_system_client(fs)
    for path, size in written.items():
        assert client.get_file_client(path).download_file().readall() == payload(path, size)
    result = run_handler("handlers.stacks:digests", {"paths": list(written)})
    assert result.return_value == {p: digest(payload(p, n)) for p, n in written.items()}


@_needs("adlfs")
def test_fsspec_adlfs(emulators, seeded, tmp_path):
    before = emulators.counts("lake")
    report = _stack(emulators, seeded, "adlfs_stack.py", str(tmp_path))
    _expect_read(report)
    blocks = emulators.counts("lake").get("put_block", 0) - before.get("put_block", 0)
    assert blocks >= 4  # open for write: one block per 64 KiB
    _read_back(emulators, seeded, {"adlfs/small.bin": 1000, "adlfs/written.bin": 200_000})


@_needs("obstore")
def test_obstore(emulators, seeded):
    before = emulators.counts("lake")
    report = _stack(emulators, seeded, "obstore_stack.py")
    _expect_read(report)
    after = emulators.counts("lake")
    assert after.get("put_block", 0) - before.get("put_block", 0) >= 4  # 1 MiB in 256 KiB
    assert after.get("blob_batch", 0) > before.get("blob_batch", 0)  # its deletes
    _read_back(emulators, seeded, {"obstore/small.bin": 1000, "obstore/multi.bin": 1 << 20})


def test_the_blob_sdk_reads_and_is_read(emulators, seeded, monkeypatch):
    """The Blob SDK (chunked upload) and the DataLake SDK and ctx.lake read each other."""
    from azure.storage.blob import BlobServiceClient

    env = emulators.environment(filesystem=seeded, app_service=True)
    service = BlobServiceClient.from_connection_string(
        env["AZURE_STORAGE_CONNECTION_STRING"], retry_total=0, max_single_put_size=64 * 1024,
        max_block_size=64 * 1024, connection_verify=emulators.ca_path)
    container = service.get_container_client(seeded)
    for path, size in SEEDED.items():
        assert container.download_blob(path).readall() == payload(path, size)
    container.upload_blob("blob/chunked.bin", payload("blob/chunked.bin", 200_000))
    _read_back(emulators, seeded, {"blob/chunked.bin": 200_000})


@pytest.mark.skipif(not shutil.which("curl"), reason="no curl on this machine")
def test_curl_with_the_env_file_loaded_over_a_shell_that_trusts_the_system_bundle(
        emulators, seeded, tmp_path):
    """curl reads CURL_CA_BUNDLE before SSL_CERT_FILE: a shell that set it to the system's
    bundle must still reach the emulators once the env file is loaded. A token through App
    Service's protocol, then a Get Blob with it, as a shell script would (the header and the
    token go to curl on stdin, never on its command line, where any process could read them)."""
    env_file = tmp_path / "emu.env"
    env_file.write_text(envfile.format_environment(
        emulators.environment(filesystem=seeded, app_service=True)))
    script = r"""
set -euo pipefail
set -a; . "$1"; set +a
token=$(printf 'X-IDENTITY-HEADER: %s\n' "$IDENTITY_HEADER" | curl -sS -f -H @- \
  "$IDENTITY_ENDPOINT?resource=https://storage.azure.com&api-version=2019-08-01" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
printf 'Authorization: Bearer %s\nx-ms-version: 2021-08-06\n' "$token" |
  curl -sS -f -H @- "$AZURE_STORAGE_ENDPOINT/$2/seeded/dfs.bin" | sha256sum
"""
    env = {k: v for k, v in os.environ.items()
           if k not in CLEARED_VARIABLES and not k.startswith(("AZURE_", "FSSPEC_"))}
    env.update(CURL_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt", SSL_CERT_DIR="/etc/ssl/certs")
    proc = subprocess.run(["bash", "-c", script, "curl", str(env_file), seeded], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = hashlib.sha256(payload("seeded/dfs.bin", 300_000)).hexdigest()
    assert proc.stdout.split()[0] == expected


AZ = Path(os.environ.get("WORKER_TEST_AZ") or
          Path(__file__).resolve().parent.parent / ".ci-venvs" / "azure-cli" / "bin" / "az")


@pytest.mark.skipif(not AZ.exists(), reason="no az CLI at %s: bash tests/run.sh installs it "
                                            "when it tests Python 3.12 (or set WORKER_TEST_AZ)"
                                            % AZ)
def test_az_storage_with_the_env_file_loaded(emulators, seeded, tmp_path):
    """`az storage blob` with the connection string the env file sets, as a shell would:
    it lists what the DataLake SDK wrote, and what it uploads ctx.lake reads back."""
    env = {k: v for k, v in os.environ.items()
           if k not in CLEARED_VARIABLES and not k.startswith(("AZURE_", "FSSPEC_"))}
    text = envfile.format_environment(emulators.environment(filesystem=seeded, app_service=True))
    env.update(envfile.parse(text))
    env.update(AZURE_CONFIG_DIR=str(tmp_path / ".azure"), AZURE_CORE_COLLECT_TELEMETRY="no",
               AZURE_CORE_ONLY_SHOW_ERRORS="true")
    local = tmp_path / "up.bin"
    local.write_bytes(payload("from-az/up.bin", 200_000))

    def az(*args: str) -> str:
        done = subprocess.run([str(AZ), "storage", "blob", *args, "--container-name", seeded,
                               "--output", "json"], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    names = [b["name"] for b in json.loads(az("list", "--prefix", "seeded/"))]
    assert names == ["seeded/dfs.bin", "seeded/lake.bin"]
    az("upload", "--name", "from-az/up.bin", "--file", str(local))
    _read_back(emulators, seeded, {"from-az/up.bin": 200_000})
