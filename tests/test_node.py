"""The application package on a Batch node laid out as Batch lays one out, with no network.

examples/ is built into a package once per session, extracted with Python's zipfile (which
keeps no executable bit) and started with the command lines of worker.deploy.commandline,
split into words and run without a shell, as Batch runs them. The start task, the tasks and
the emulators all run inside one network namespace that has only loopback (tests/node.py),
so the node has nothing but the package's wheelhouse, and the tasks nothing but the
emulators. The emulators run as ``python -m worker emulate`` in that namespace rather than
through the in-process ``emulators`` fixture, whose loopback is outside it; outputs are
checked with the raw Data Lake SDK (tests/ns_lake.py), also inside it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, build
from node import Emulators, Namespace, Node, node_requirements, python_of

from worker.deploy.commandline import (
    package_variable,
    start_task_command_line,
    task_command_line,
)

APP, VERSION = "examples", "1.0.0"
TOKEN = "report-signing-token-f00d"
SALES = (REPO / "examples" / "data" / "lake" / "raw" / "sales" / "2024-01-31.csv").read_bytes()
NASTY = "eu 'single' \"double\" $HOME `id` $(id) \\back\\slash\tünïcødé 日本 * ; | & > <\nline 2"

pytestmark = node_requirements()


@pytest.fixture(scope="module")
def ns():
    namespace = Namespace()
    yield namespace
    namespace.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory, ns, example_package):
    """One node: the package extracted, its start task run twice (boot, then a reboot)."""
    node = Node(tmp_path_factory.mktemp("node"), ns)
    node.install(example_package, package_variable(APP, VERSION), "examples1.0.0")
    node.boot = node.start_task(start_task_command_line(APP, VERSION))
    node.reboot = node.start_task(start_task_command_line(APP, VERSION))
    return node


@pytest.fixture(scope="module")
def emulators(ns, tmp_path_factory):
    running = Emulators(ns, tmp_path_factory.mktemp("emulators"), {"report-token": TOKEN})
    running.lake("put", "raw/sales/2024-01-31.csv", data=SALES)
    yield running
    running.close()


@pytest.fixture
def file_lake(tmp_path):
    (tmp_path / "lake" / "raw" / "sales").mkdir(parents=True)
    (tmp_path / "lake" / "raw" / "sales" / "2024-01-31.csv").write_bytes(SALES)
    (tmp_path / "secrets.json").write_text(json.dumps({"report-token": TOKEN}))
    return {"WORKER_LAKE_URL": "file://%s/lake" % tmp_path,
            "WORKER_SECRETS_FILE": str(tmp_path / "secrets.json")}


def test_the_node_has_only_loopback(ns):
    assert ns.links() == ["lo"]
    probe = subprocess.run(ns.wrap([sys.executable, "-c", "import socket; socket.create_connection("
                                    "('pypi.org', 443), 5)"]), capture_output=True, text=True)
    assert probe.returncode != 0


def test_the_package_was_extracted_without_executable_bits(node):
    folder = node.root / "applications" / "examples1.0.0"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 40
    assert not [p for p in files if p.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)]


def test_the_start_task_provisions_from_the_wheelhouse_alone(node):
    boot = node.boot
    assert boot.returncode == 0, boot.stderr
    app = node.root / "applications" / "examples1.0.0"
    assert "--no-index --find-links %s/wheels" % app in boot.stdout
    assert "+ tabulate==0.9.0" in boot.stderr  # uv's report: the project's requirement too
    assert "doctor: all checks passed" in boot.stdout
    (pointer,) = node.pointers().values()
    manifest = json.loads((app / "manifest.json").read_text())
    assert pointer[0] == manifest["package_id"] and pointer[2] == str(app)
    assert (node.env_root / pointer[1] / ".stamp").is_file()
    assert (node.root / "startup" / "stdout.txt").is_file()  # where Batch keeps it


def test_a_second_start_task_run_is_a_no_op(node):
    reboot = node.reboot
    assert reboot.returncode == 0, reboot.stderr
    assert "up to date: this package's environment is %s/envs/py3.8-" % node.env_root in (
        reboot.stdout)
    for step in ("wheelhouse", "lock", "venv", "install"):
        assert "step %s:" % step not in reboot.stdout


def run_task(node, task_id, worker_args, app=APP, version=VERSION, packages=None, **env):
    return node.task("job-1", task_id, task_command_line(app, version, worker_args), packages,
                     **env).wait()


def test_tasks_run_the_examples_against_the_emulators(node, emulators):
    """Managed identity (IMDS), the lake, a secret, DuckDB, and the project's tabulate."""
    report = run_task(node, "report", ["run", "handlers.report:daily", "--param",
                                       "date=2024-01-31"], **emulators.env)
    assert report.returncode == 0, report.stderr
    rollup = run_task(node, "rollup", ["run", "handlers.sales:rollup", "--param",
                                       "date=2024-01-31"], **emulators.env)
    assert rollup.returncode == 0, rollup.stderr
    assert report.result["return_value"] == {"regions": 3, "tabulate": "0.9.0"}
    assert (report.result["task"]["job_id"], report.result["task"]["task_id"]) == ("job-1",
                                                                                   "report")
    found = json.loads(emulators.lake(
        "get", "curated/daily/2024-01-31.json", "curated/report/2024-01-31.txt",
        "curated/report/2024-01-31.txt.sig", "curated/report/2024-01-31.parquet"))
    assert json.loads(found["curated/daily/2024-01-31.json"]) == {
        "apac": 42.0, "eu": 200.0, "us": 100.0}
    text = found["curated/report/2024-01-31.txt"].rstrip("\n")
    assert text.splitlines()[0].split() == ["region", "orders", "total"]
    assert text.splitlines()[3].split() == ["eu", "3", "200.00"]
    signature = hmac.new(TOKEN.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert found["curated/report/2024-01-31.txt.sig"] == signature + "\n"
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(found["curated/report/2024-01-31.parquet"].encode("latin-1")))
    assert table.to_pydict() == {"region": ["apac", "eu", "us"], "orders": [1, 3, 2],
                                 "total": [42.0, 200.0, 100.0]}
    for run in (report, rollup):
        assert TOKEN not in run.stderr + run.stdout + json.dumps(run.result)


def test_the_launcher_runs_other_worker_commands_with_managed_identity(node, emulators):
    doctor = run_task(node, "doctor", ["doctor"], **emulators.env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "credential: managed identity from the node's endpoint" in doctor.stdout
    assert "doctor: all checks passed" in doctor.stdout


def test_the_worker_exit_code_comes_through_the_launcher(node, file_lake):
    missing = run_task(node, "missing", ["run", "handlers.sales:rollup", "--param",
                                         "date=1999-12-31"], **file_lake)
    assert missing.returncode == 4, missing.stderr
    assert "no sales file for 1999-12-31" in missing.stderr


@pytest.mark.parametrize("variable", [
    "AZ_BATCH_APP_PACKAGE_salesapp_1_0_0",     # lower case, as Batch's variables page shows
    "AZ_BATCH_APP_PACKAGE_SALESAPP_1_0_0",     # upper case
    "AZ_BATCH_APP_PACKAGE_SalesApp_1_0_0",     # the application id's own case
    "AZ_BATCH_APP_PACKAGE_salesapp",           # the default version: no version suffix
])
def test_the_package_variable_is_found_in_any_case_and_params_arrive_unchanged(
        node, file_lake, variable):
    folder = node.packages[package_variable(APP, VERSION)]
    task = run_task(node, "case", ["run", "handlers.sales:rollup", "--param", "date=2024-01-31",
                                   "--param", "region=" + NASTY], app="SalesApp",
                    packages={variable: folder}, **file_lake)
    assert task.returncode == 0, task.stderr
    assert task.result["params"] == {"date": "2024-01-31", "region": NASTY}


def test_the_versioned_variable_wins_over_the_default_one(node, file_lake, tmp_path):
    folder = node.packages[package_variable(APP, VERSION)]
    packages = {"AZ_BATCH_APP_PACKAGE_examples": str(tmp_path),  # not a package
                "AZ_BATCH_APP_PACKAGE_EXAMPLES_1_0_0": folder,
                "AZ_BATCH_APP_PACKAGE_examples_0_9": str(tmp_path)}
    task = run_task(node, "versioned", ["run", "handlers.sales:rollup", "--param",
                                        "date=2024-01-31"], packages=packages, **file_lake)
    assert task.returncode == 0, task.stderr


def test_no_package_variable_is_exit_21_naming_it(node):
    task = run_task(node, "nopackage", ["doctor", "--offline"],
                    packages={"AZ_BATCH_APP_PACKAGE_examples_0_9": "/nonexistent"})
    assert task.returncode == 21
    assert task.stderr == (
        "worker-task: no AZ_BATCH_APP_PACKAGE_examples_1_0_0 or AZ_BATCH_APP_PACKAGE_examples "
        "variable on this node: the task needs application package examples version 1.0.0 "
        "referenced by its pool or task\n")


def test_a_failed_provisioning_is_exit_20(node, tmp_path):
    """No environment for the package under this root, and a start task that cannot run."""
    task = run_task(node, "broken", ["doctor", "--offline"], WORKER_ENV_ROOT=str(tmp_path),
                    WORKER_PYTHON_VERSION="3.12")
    assert task.returncode == 20
    lines = task.stderr.splitlines()
    assert "FAILED step=config exit=2: this package is built for Python 3.8, not " \
           "WORKER_PYTHON_VERSION=3.12" in lines[-2]
    assert lines[-1] == ("task.sh: the start task could not provision this package's "
                         "environment (exit 2; its FAILED line above says why)")


def test_task_sh_outside_a_package_says_so(tmp_path):
    result = subprocess.run(["bash", str(REPO / "task.sh"), "doctor"], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr == (
        "task.sh: %s is not a built package (no package.env); build one with: python -m worker "
        "package PROJECT_DIR --out app.zip\n" % REPO)


def fake_env(node: Node, name: str, package_dir: Path, package_id: str) -> None:
    """An environment with a pointer to it, as an earlier package left them."""
    (node.env_root / "envs" / name / "bin").mkdir(parents=True)
    (node.env_root / "envs" / name / ".stamp").write_text("fake\n")
    pointer = node.env_root / "packages" / str(package_dir).replace("/", "%2F")
    pointer.write_text("%s\nenvs/%s\n%s\n" % (package_id, name, package_dir))


def test_two_versions_get_their_own_environments_and_a_task_level_package_provisions_once(
        node, emulators, tmp_path, tmp_path_factory):
    """Version 2 (tabulate 0.8.10) arrives as a task-level package: no start task runs for it.
    Two of its tasks start together; the first provisions under the start task's lock while
    the second waits, then both run in version 2's environment, and version 1 keeps its own.
    The build's prune drops an environment whose package folder is gone, and keeps one a
    live package still points at."""
    project = tmp_path / "v2" / "examples"
    shutil.copytree(str(REPO / "examples"), str(project))
    (project / "requirements.txt").write_text("tabulate==0.8.10\n")
    package = tmp_path / "v2.zip"
    result = build(project, package, "--version", "2.0.0")
    assert result.returncode == 0, result.stderr
    v2 = node.install(package, package_variable(APP, "2.0.0"), "examples2.0.0")
    other = node.root / "applications" / "other1.0"
    other.mkdir()
    (other / "package.env").write_text("WORKER_PACKAGE_ID=%s\n" % ("1" * 64))
    fake_env(node, "py3.8-livepointer0", other, "1" * 64)
    fake_env(node, "py3.8-deadpointer0", node.root / "applications" / "gone1.0", "2" * 64)

    report_args = ["run", "handlers.report:daily", "--param", "date=2024-01-31"]
    # the second task reports another day: two tasks committing the same outputs at once
    # would be a commit conflict (exit 5), which is not what this test is about
    emulators.lake("put", "raw/sales/2024-02-01.csv", data=SALES)
    other_day = ["run", "handlers.report:daily", "--param", "date=2024-02-01"]
    first = node.task("job-2", "first", task_command_line(APP, "2.0.0", report_args),
                      **emulators.env)
    first.wait_for_stderr("step lock: done")  # it holds the lock: the second must wait
    second = node.task("job-2", "second", task_command_line(APP, "2.0.0", other_day),
                       **emulators.env)
    first.wait()
    second.wait()
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert first.stderr.count("step venv: start") == 1
    assert "step venv" not in second.stderr
    assert "another run holds %s/.lock; waiting" % node.env_root in second.stderr
    assert "another run provisioned py3.8-" in second.stderr
    assert first.result["return_value"]["tabulate"] == "0.8.10"
    assert second.result["return_value"]["tabulate"] == "0.8.10"

    again = run_task(node, "v1-again", report_args, **emulators.env)
    assert again.returncode == 0, again.stderr
    assert again.result["return_value"]["tabulate"] == "0.9.0"
    pointers = {lines[2]: lines[1] for lines in node.pointers().values()}
    v1 = node.packages[package_variable(APP, VERSION)]
    assert set(pointers) == {v1, str(v2), str(other)}  # the dead pointer is gone
    assert pointers[v1] != pointers[str(v2)]
    envs = sorted(p.name for p in (node.env_root / "envs").iterdir())
    assert "py3.8-livepointer0" in envs and "py3.8-deadpointer0" not in envs
    assert {pointers[v1][5:], pointers[str(v2)][5:]} <= set(envs)


def test_a_312_package_provisions_python_312_beside_and_runs_the_examples(
        node, emulators, example_package_312):
    """A package built with --python 3.12 (for Ubuntu 24.04 nodes; pyenv's 3.12 stands in for
    the distribution's) on the same node: its start task builds a 3.12 environment from the
    package's own wheelhouse, beside the 3.8 one, and its tasks run on 3.12."""
    python312 = python_of("3.12")
    if python312 is None:
        pytest.skip("needs a pyenv Python 3.12 for the 3.12 package")
    node.install(example_package_312, package_variable(APP, "3.0.0"), "examples3.0.0")
    boot = node.start_task(start_task_command_line(APP, "3.0.0"))
    assert boot.returncode == 0, boot.stderr
    assert "using %s (Python 3.12." % python312 in boot.stdout
    assert "lock %s/applications/examples3.0.0/locks/py312.txt" % node.root in boot.stdout
    doctor = run_task(node, "doctor312", ["doctor", "--offline"], version="3.0.0")
    assert doctor.returncode == 0, doctor.stderr
    assert doctor.stdout.startswith("batch-worker 0.1.0 on Python 3.12.")
    report = run_task(node, "report312", ["run", "handlers.report:daily", "--param",
                                          "date=2024-01-31"], version="3.0.0", **emulators.env)
    assert report.returncode == 0, report.stderr
    assert report.result["return_value"] == {"regions": 3, "tabulate": "0.9.0"}
    envs = {lines[1].split("-")[0] for lines in node.pointers().values()}
    assert {"envs/py3.8", "envs/py3.12"} <= envs
