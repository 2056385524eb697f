"""The example pipeline (examples/) through the deploy loop on the local Batch service, with
nothing but the emulators' environment and the spec's own keys pointed at them (``--set``
of the lake, the vault and the pool's identity): ``deploy`` of its real package to a 2-node
pool (each node provisioning Python 3.8 from the package's wheelhouse with the start task),
``status --watch`` to the end, ``results``; the outputs byte-compared with those of
``local-batch`` running the same package and documents, and the results' return values with
its result records. Then a partition made to fail (its input corrupt), ``status`` showing
why, the input fixed, ``rerun --failed``, the job completing with the same bytes.

Needs a pyenv Python 3.8 for the nodes and azure-batch 15 (Python >= 3.9) for the loop.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from node import node_requirements

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DAYS = ("2024-01-31", "2024-02-01", "2024-02-02")
DAILY = ["curated/daily/date=%s/part-0.parquet" % d for d in DAYS]

pytestmark = node_requirements()[:1] + [
    pytest.mark.skipif(sys.version_info < (3, 9),
                       reason="the deploy loop needs azure-batch 15 (Python >= 3.9)")]


def cli(*argv: str) -> Tuple[int, str, str]:
    from worker.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# -- local-batch's run, for comparison --------------------------------------------------------

@pytest.fixture(scope="module")
def local_run(example_package, tmp_path_factory) -> Dict[str, Any]:
    """``spec all`` then ``local-batch --emulators`` on the sample data; the curated files
    it left (read back through ``lake get`` from its emulators restarted on its data) and
    each task's result record."""
    work = tmp_path_factory.mktemp("local-run")
    lake = work / "lake"
    shutil.copytree(str(EXAMPLES / "data" / "lake"), str(lake))
    env = dict(os.environ, WORKER_LAKE_URL="file://%s" % lake)
    spec = subprocess.run([sys.executable, "-m", "worker", "spec", "all", "--spec",
                           str(EXAMPLES / "batch.toml"), "--package", str(example_package),
                           "--out", str(work / "specs")], capture_output=True, text=True,
                          env=env, cwd=str(REPO))
    assert spec.returncode == 0, spec.stderr
    root = work / "node"
    run = subprocess.run([sys.executable, "-m", "worker", "local-batch", "--package",
                          str(example_package), "--specs", str(work / "specs"), "--root",
                          str(root), "--emulators", "--lake-dir", str(EXAMPLES / "data" / "lake"),
                          "--secrets", str(EXAMPLES / "secrets.json")],
                         capture_output=True, text=True, timeout=900, cwd=str(REPO))
    assert run.returncode == 0, run.stdout + run.stderr
    records = {p.parent.parent.name: json.loads(p.read_text())
               for p in (root / "workitems" / "sales-daily" / "job-1").glob("*/wd/result.json")}
    return {"files": _lake_get(root, work / "out", "curated"), "records": records}


def _lake_get(root: Path, out: Path, folder: str) -> Dict[str, bytes]:
    env_file = root / "emulators" / "after.env"
    log = (root / "emulators" / "after.log").open("w")
    emulate = subprocess.Popen([sys.executable, "-m", "worker", "emulate", "--quiet", "--data",
                                str(root / "emulators" / "data"), "--env-file", str(env_file),
                                "--lake-port", "0", "--vault-port", "0", "--identity-port", "0"],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            assert emulate.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "WORKER_",
                                                                          "IDENTITY_", "MSI_"))}
        env.update(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in
                   line)
        got = subprocess.run([sys.executable, "-m", "worker", "lake", "get", folder,
                              str(out) + "/"], env=env, capture_output=True, text=True)
        assert got.returncode == 0, got.stderr
    finally:
        emulate.terminate()
        emulate.wait(timeout=30)
        log.close()
    return {folder + "/" + p.relative_to(out).as_posix(): p.read_bytes()
            for p in out.rglob("*") if p.is_file()}


# -- the deploy loop's run ------------------------------------------------------------------

@pytest.fixture
def service(batch_service, monkeypatch, tmp_path):
    """The local Batch service with the sample lake and the example's secrets, and the
    emulators' environment as the only configuration."""
    from worker.emulators.handle import EmulatorHandle

    handle = EmulatorHandle(batch_service.set)
    filesystem = handle.new_filesystem("examples")
    handle.load_directory(filesystem, str(EXAMPLES / "data" / "lake"))
    for name, value in json.loads((EXAMPLES / "secrets.json").read_text()).items():
        handle.seed_secret(name, value)
    env = batch_service.environment()
    env["WORKER_LAKE_URL"] = "%s/%s" % (handle.account_url, filesystem)
    for name in list(os.environ):
        if name.startswith(("AZURE_", "WORKER_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return {"batch": batch_service, "lake": handle, "filesystem": filesystem, "env": env}


def _sets(env: Dict[str, str], *extra: str) -> List[str]:
    """The example spec's Azure placeholders pointed at the emulators, from their env."""
    sets = ["pool.client_id=" + env["AZURE_CLIENT_ID"], "job.lake_url=" + env["WORKER_LAKE_URL"],
            "job.vault_url=" + env["WORKER_VAULT_URL"]] + list(extra)
    return [a for s in sets for a in ("--set", s)]


def _files(service: Dict[str, Any], paths: List[str]) -> Dict[str, bytes]:
    return {p: service["lake"].read_file(service["filesystem"], p) for p in paths}


def _delete(paths: List[str]) -> None:
    from worker.config import Config
    from worker.lake import Lake, open_store

    config = Config.from_env()
    lake = Lake(open_store(config.lake_url, config=config), "test")
    try:
        for path in paths:
            lake.delete(path)
    finally:
        lake.close()


def test_the_example_pipeline_deployed_watched_collected_failed_fixed_and_rerun(
        service, example_package, local_run, tmp_path):
    env = service["env"]
    package = ["--package", str(example_package)]
    code, out, err = cli("deploy", "--spec", str(EXAMPLES / "batch.toml"), *package,
                         *_sets(env))
    assert code == 0, out + err
    assert "  package  examples 1.0.0: uploaded (%d bytes) and activated" % (
        example_package.stat().st_size) in out
    assert "  pool     examples: created" in out
    assert "  tasks    4: 4 added, 0 already there (1 requests)" in out

    code, out, err = cli("status", "sales-daily", "--watch", "--interval", "1")
    assert code == 0, out + err
    assert "  tasks 4: 0 active, 0 running, 4 succeeded, 0 failed" in out

    code, out, err = cli("results", "sales-daily", "--out", str(tmp_path / "results.json"))
    assert code == 0, err
    rows = {r["task_id"]: r for r in json.loads((tmp_path / "results.json").read_text())}
    assert sorted(rows) == ["1", "2", "3", "merge"]
    for task_id, record in local_run["records"].items():
        ours = {k[len("return."):]: v for k, v in rows[task_id].items()
                if k.startswith("return.") and v is not None}  # the table's other tasks' keys
        theirs = {k: json.dumps(v) if isinstance(v, list) else v
                  for k, v in record["return_value"].items()}
        assert ours == theirs, task_id
    summary = "curated/summary/sales-daily.parquet"
    ours = _files(service, DAILY + [summary])
    assert ours == {p: local_run["files"][p] for p in DAILY + [summary]}

    # a partition made to fail, shown by status, its input fixed, rerun
    raw = "raw/sales/date=2024-02-01/part-0.parquet"
    good = service["lake"].read_file(service["filesystem"], raw)
    service["lake"].seed_file(service["filesystem"], raw, b"not a parquet file")
    _delete(DAILY)  # the new job's partitions must be its own
    code, out, err = cli("deploy", "--spec", str(EXAMPLES / "batch.toml"), *package,
                         *_sets(env, "job.id=sales-fix", "tasks.dependency_action=block"))
    assert code == 0, out + err
    assert "  package  examples 1.0.0: there with the same bytes: not uploaded again" in out
    assert "  pool     examples: up to date" in out
    code, out, err = cli("status", "sales-fix", "--watch", "--interval", "1")
    assert code == 40, out + err
    assert "failed tasks:\n  2 (raw/sales/date=2024-02-01): exit 4 (bad input data, " \
           "retrying will not help): " in out
    assert "part-0.parquet" in out and "1 blocked by failed tasks" in out
    service["lake"].seed_file(service["filesystem"], raw, good)
    code, out, err = cli("rerun", "sales-fix", "--failed")
    assert code == 0 and out.startswith("reactivated 1 task(s) of job sales-fix: 2\n"), err
    code, out, err = cli("status", "sales-fix", "--watch", "--interval", "1")
    assert code == 0, out + err
    assert _files(service, DAILY) == {p: local_run["files"][p] for p in DAILY}
