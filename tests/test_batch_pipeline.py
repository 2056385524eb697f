"""The example pipeline (examples/) on the local Batch service, deployed as Azure would run
it: the package uploaded to the account, the pool of ``spec all`` created through the
account plane (three spot nodes, each provisioning Python 3.8 from the package's wheelhouse
with the start task), the job and its tasks through the data plane, the lake, the vault and
the identity endpoint the emulators'.

Run twice: once undisturbed, once with the node running a partition preempted mid-task (its
task runs again from the start on another node). The outputs are byte-identical: tasks are
at-least-once and the harness's commits make a rerun leave what one run leaves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import pytest
from batch_raw import Raw
from node import node_requirements
from test_batch_arm import resolved

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
FILESYSTEM = "pipeline"
JOB = "sales-daily"
OUTPUTS = ["curated/daily/date=%s/part-0.parquet" % d
           for d in ("2024-01-31", "2024-02-01", "2024-02-02")] + [
    "curated/summary/%s.parquet" % JOB]

pytestmark = node_requirements()[:1] + [  # Python 3.8 for the nodes; no namespace needed
    pytest.mark.skipif(sys.version_info < (3, 12), reason="the nodes run the package's Python "
                       "whatever runs the service: once, with the 3.12 suite (azure-mgmt 19)")]


def spec_all(handle: Any, package: Path, out: Path) -> None:
    """``spec all`` for examples/ over a file:// copy of its sample lake, pointed at the
    emulators' lake and vault and a 3-spot-node pool of this account."""
    env = handle.environment()
    lake = out.parent / "lake-copy"
    shutil.copytree(str(EXAMPLES / "data" / "lake"), str(lake))
    sets = {"pool.account": handle.account, "pool.nodes": "0", "pool.spot_nodes": "3",
            "pool.client_id": env["AZURE_CLIENT_ID"],
            "job.lake_url": env["WORKER_LAKE_URL"].rsplit("/", 1)[0] + "/" + FILESYSTEM,
            "job.vault_url": env["WORKER_VAULT_URL"]}
    done = subprocess.run([sys.executable, "-m", "worker", "spec", "all", "--spec",
                           str(EXAMPLES / "batch.toml"), "--package", str(package), "--out",
                           str(out), *[a for k, v in sets.items() for a in ("--set",
                                                                            "%s=%s" % (k, v))]],
                          capture_output=True, text=True, cwd=str(REPO),
                          env={"PATH": "/usr/bin:/bin", "WORKER_LAKE_URL": "file://%s" % lake})
    assert done.returncode == 0, done.stderr


def fresh_lake(handle: Any, specs: Path) -> None:
    store = handle.set.lake_app.store
    if FILESYSTEM in store.filesystems:
        store.delete_filesystem(FILESYSTEM)
    store.create_filesystem(FILESYSTEM, {})
    handle.set.load_directory(FILESYSTEM, str(EXAMPLES / "data" / "lake"))
    handle.set.load_directory(FILESYSTEM, str(specs / "lake"))


def run(handle: Any, specs: Path, preempt: bool) -> Dict[str, Any]:
    """The pipeline's job on a fresh pool and lake; the outputs' bytes and the tasks."""
    fresh_lake(handle, specs)
    raw = Raw(handle)
    client = handle.management_client(retry_total=0)
    env = handle.environment()
    (resource,) = json.loads((specs / "pool.json").read_text())["resources"]
    client.pool.create(env["AZURE_RESOURCE_GROUP"], handle.account, resource["name"].split(
        "/")[1], resolved(resource, handle.service.arm_prefix()))
    job = json.loads((specs / "job.json").read_text())
    assert raw.send("POST", "/jobs", job)[0] == 201
    tasks = json.loads((specs / "tasks-001.json").read_text())
    status, added, _ = raw.send("POST", "/jobs/%s/addtaskcollection" % JOB, {"value": tasks})
    assert status == 200 and {r["status"] for r in added["value"]} == {"success"}
    if preempt:
        _preempt_a_running_partition(handle, raw)
    deadline = time.monotonic() + 600
    while raw.send("GET", "/jobs/%s" % JOB)[1]["state"] != "completed":
        assert time.monotonic() < deadline, "the job did not complete"
        time.sleep(0.5)
    listed = raw.send("GET", "/jobs/%s/tasks" % JOB)[1]["value"]
    store = handle.set.lake_app.store
    outputs = {path: bytes(store.get(FILESYSTEM, path).data) for path in OUTPUTS}
    assert raw.send("DELETE", "/jobs/%s" % JOB)[0] == 202
    assert raw.send("DELETE", "/pools/%s" % job["poolInfo"]["poolId"])[0] == 202
    return {"outputs": outputs, "tasks": {t["id"]: t for t in listed}}


def _preempt_a_running_partition(handle: Any, raw: Raw) -> None:
    """Once task 2 has started its handler, preempt its (spot) node."""
    deadline = time.monotonic() + 600
    while True:
        task = raw.send("GET", "/jobs/%s/tasks/2" % JOB)[1]
        if task["state"] == "running":
            status, text, _ = raw.send("GET", "/jobs/%s/tasks/2/files/stderr.txt" % JOB)
            if status == 200 and "handlers.pipeline:partition" in str(text):
                break
        assert task["state"] != "completed", "task 2 ended before it could be preempted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert handle.preempt(task["nodeInfo"]["nodeId"]) >= 1


def test_the_pipeline_on_preempted_spot_nodes_leaves_the_same_bytes(
        batch_service, example_package, tmp_path, monkeypatch):
    handle = batch_service
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST",
                       handle.environment()["AZURE_POD_IDENTITY_AUTHORITY_HOST"])
    handle.add_package(example_package)
    for name, value in json.loads((EXAMPLES / "secrets.json").read_text()).items():
        handle.set.vault_app.store.set(name, value)
    specs = tmp_path / "specs"
    spec_all(handle, example_package, specs)
    calm = run(handle, specs, preempt=False)
    assert {t["executionInfo"]["result"] for t in calm["tasks"].values()} == {"success"}
    stormy = run(handle, specs, preempt=True)
    assert {t["executionInfo"]["result"] for t in stormy["tasks"].values()} == {"success"}
    assert stormy["tasks"]["2"]["executionInfo"]["requeueCount"] == 1
    assert stormy["tasks"]["2"]["executionInfo"]["retryCount"] == 0
    for path in OUTPUTS:
        assert stormy["outputs"][path] == calm["outputs"][path], path
