"""The local Batch service driven by ``az batch`` from the azure-cli package (its own venv,
.ci-venvs/azure-cli from locks/azure-cli.txt: azure-cli pins its own azure-batch), with the
account key from the environment the emulators' env file sets (AZURE_BATCH_ENDPOINT,
AZURE_BATCH_ACCOUNT, AZURE_BATCH_ACCESS_KEY) and their CA (REQUESTS_CA_BUNDLE): a pool from a
JSON file, a job, tasks added as a collection, listed, shown, a file downloaded, a failed
task reactivated, Batch's errors shown as az shows Azure's, and the clean-up."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

REPO = Path(__file__).resolve().parent.parent
AZ = Path(os.environ.get("WORKER_TEST_AZ") or REPO / ".ci-venvs" / "azure-cli" / "bin" / "az")

pytestmark = [
    pytest.mark.skipif(not AZ.exists(), reason="no az CLI at %s: bash tests/run.sh installs it "
                                               "from locks/azure-cli.txt (or set "
                                               "WORKER_TEST_AZ)" % AZ),
    pytest.mark.skipif(sys.version_info < (3, 12), reason="az has a Python of its own: run "
                                                          "once, with the 3.12 suite"),
]


class Az:
    """``az`` with only the variables a user's shell would have after loading the env file."""

    def __init__(self, handle: Any, home: Path) -> None:
        env = handle.environment()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                    "AZURE_CONFIG_DIR": str(home / ".azure"),
                    "AZURE_CORE_COLLECT_TELEMETRY": "no", "AZURE_CORE_NO_COLOR": "true",
                    "AZURE_CORE_ONLY_SHOW_ERRORS": "true"}
        self.env.update({k: env[k] for k in ("AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT",
                                             "AZURE_BATCH_ACCESS_KEY", "REQUESTS_CA_BUNDLE")})

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(AZ), "batch", *args, "--output", "json"],
                              capture_output=True, text=True, env=self.env, timeout=120)
        if check:
            assert done.returncode == 0, "az batch %s: %s" % (" ".join(args), done.stderr)
        return done

    def json(self, *args: str) -> Any:
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else None


def bash(script: str) -> str:
    return "/bin/bash -c %s" % shlex.quote(script)


def test_az_batch_runs_a_job_with_the_account_key(batch_service, tmp_path):
    az = Az(batch_service, tmp_path)
    pool = {"id": "azpool", "vmSize": "standard_d2a_v4", "targetDedicatedNodes": 1,
            "taskSlotsPerNode": 2,
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts",
                                   "sku": "server", "version": "latest"},
                "nodeAgentSKUId": "batch.node.ubuntu 24.04"}}
    (tmp_path / "pool.json").write_text(json.dumps(pool))
    az.run("pool", "create", "--json-file", str(tmp_path / "pool.json"))
    az.run("job", "create", "--id", "azjob", "--pool-id", "azpool")
    fixed = tmp_path / "fixed"
    tasks: List[Dict[str, Any]] = [
        {"id": "t%d" % n, "commandLine": bash("echo from az %d" % n)} for n in range(5)]
    tasks.append({"id": "needs-input", "commandLine": bash(
        "test -e %s || { echo missing >&2; exit 4; }; echo done" % fixed)})
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    added = az.json("task", "create", "--job-id", "azjob", "--json-file",
                    str(tmp_path / "tasks.json"))
    assert sorted(t["taskId"] for t in added) == sorted(t["id"] for t in tasks)
    assert {t["status"] for t in added} == {"success"}

    deadline = time.monotonic() + 120
    while True:
        counts = az.json("job", "task-counts", "show", "--job-id", "azjob")
        if counts["taskCounts"]["completed"] == len(tasks):
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert (counts["taskCounts"]["succeeded"], counts["taskCounts"]["failed"]) == (5, 1)
    listed = az.json("task", "list", "--job-id", "azjob", "--filter",
                     "executionInfo/result eq 'failure'", "--select", "id,executionInfo")
    assert [(t["id"], t["executionInfo"]["exitCode"]) for t in listed] == [("needs-input", 4)]
    shown = az.json("task", "show", "--job-id", "azjob", "--task-id", "t3")
    assert (shown["state"], shown["executionInfo"]["exitCode"]) == ("completed", 0)
    target = tmp_path / "stdout.txt"
    az.run("task", "file", "download", "--job-id", "azjob", "--task-id", "t3",
           "--file-path", "stdout.txt", "--destination", str(target))
    assert target.read_text() == "from az 3\n"

    fixed.touch()
    az.run("task", "reactivate", "--job-id", "azjob", "--task-id", "needs-input")
    while az.json("task", "show", "--job-id", "azjob", "--task-id", "needs-input")[
            "state"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    again = az.json("task", "show", "--job-id", "azjob", "--task-id", "needs-input")
    assert again["executionInfo"]["result"] == "success"

    missing = az.run("job", "show", "--job-id", "nope", check=False)
    assert missing.returncode != 0
    assert "The specified job does not exist." in missing.stderr
    az.run("job", "delete", "--job-id", "azjob", "--yes")
    az.run("pool", "delete", "--pool-id", "azpool", "--yes")
    assert az.json("pool", "list") == []


def test_az_batch_with_a_wrong_key_is_refused(batch_service, tmp_path):
    import base64

    az = Az(batch_service, tmp_path)
    az.env["AZURE_BATCH_ACCESS_KEY"] = base64.b64encode(b"k" * 64).decode()
    refused = az.run("pool", "list", check=False)
    assert refused.returncode != 0
    assert "Server failed to authenticate the request" in refused.stderr
