"""``python -m worker spec``: the pool, job and task documents, validated with the Azure
SDKs' own models (azure-batch 14.x: from_dict, validate() and serialize() back to the same
JSON, since unknown keys are dropped silently; the pool with azure-mgmt-batch's models), the
fan-out and its merge task, and one-line errors with their exit codes for bad input.
"""

from __future__ import annotations

import datetime
import json
import shlex
import shutil
import zipfile
from pathlib import Path
from typing import Any, Dict

import pytest
from sdk_models import (
    batch_models_14,
    check_batch,
    check_pool,
    mgmt_models_msrest,
    missing_required,
)

from worker.cli import main
from worker.deploy.documents import duration

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = REPO / "examples" / "batch.toml"
PACKAGE = ["--set", "package.app=examples", "--set", "package.version=1.0.0"]


def test_the_validation_catches_a_dropped_key_and_a_missing_field():
    task = {"id": "1", "commandLine": "true", "requiredSlot": 1}  # a typo: dropped
    with pytest.raises(AssertionError):
        check_batch("TaskAddParameter", task)
    with pytest.raises(AssertionError):
        check_batch("TaskAddParameter", {"id": "1"})  # no commandLine
    mgmt = mgmt_models_msrest()
    pool = mgmt.Pool.from_dict({"properties": {"startTask": {"commandLine": "x"},
                                               "applicationPackages": [{"version": "1"}]}})
    assert missing_required(pool) == ["pool.application_packages[0].id"]


# -- the example --------------------------------------------------------------------------

@pytest.fixture
def example_lake(tmp_path, monkeypatch):
    """The example's sample lake as a file:// lake, the one `spec` lists."""
    lake = tmp_path / "lake"
    shutil.copytree(str(REPO / "examples" / "data" / "lake"), str(lake))
    monkeypatch.setenv("WORKER_LAKE_URL", "file://%s" % lake)
    return lake


def spec_all(tmp_path, *options: str) -> Dict[str, Any]:
    out = tmp_path / "specs"
    assert main(["spec", "all", "--spec", str(EXAMPLE_SPEC), *PACKAGE, "--out", str(out),
                 *options]) == 0
    return {p.relative_to(out).as_posix(): json.loads(p.read_text())
            for p in out.rglob("*.json")}


def test_the_example_documents_validate_with_the_sdk_models(tmp_path, example_lake, capsys):
    docs = spec_all(tmp_path)
    assert sorted(docs) == ["job.json", "lake/.worker-jobs/sales-daily/items.json",
                            "pool.json", "tasks-001.json"]
    check_pool(docs["pool.json"])
    check_batch("JobAddParameter", docs["job.json"])
    check_batch("TaskAddCollectionParameter", {"value": docs["tasks-001.json"]})
    for task in docs["tasks-001.json"]:
        check_batch("TaskAddParameter", task)
    out = capsys.readouterr().out
    assert "az batch task create --job-id sales-daily --json-file %s/specs/tasks-001.json" % (
        tmp_path) in out
    assert "\n  python -m worker deploy --spec %s %s\n" % (EXAMPLE_SPEC, " ".join(PACKAGE)) in out
    assert "--version-name 1.0.0 --package-file PACKAGE.zip\n" in out  # none was given


def test_the_pool_is_the_arm_shape_users_write(tmp_path, example_lake):
    (resource,) = spec_all(tmp_path)["pool.json"]["resources"]
    props = resource["properties"]
    assert resource["name"] == "mybatchaccount/examples"
    assert list(resource["identity"]["userAssignedIdentities"]) == [
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/batch-worker"]
    assert props["deploymentConfiguration"]["virtualMachineConfiguration"] == {
        "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
                           "sku": "22_04-lts", "version": "latest"},
        "nodeAgentSkuId": "batch.node.ubuntu 22.04"}
    assert props["scaleSettings"] == {"fixedScale": {"targetDedicatedNodes": 2,
                                                     "targetLowPriorityNodes": 0}}
    assert (props["taskSlotsPerNode"], props["taskSchedulingPolicy"]) == (
        2, {"nodeFillType": "Pack"})
    start = props["startTask"]
    assert shlex.split(start["commandLine"])[:2] == ["/bin/bash", "-c"]
    assert start["commandLine"].endswith("' worker-starttask")
    assert (start["userIdentity"], start["waitForSuccess"], start["maxTaskRetryCount"]) == (
        {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}}, True, 1)
    assert {"name": "WORKER_TASK_SLOTS", "value": "2"} in start["environmentSettings"]
    assert props["applicationPackages"] == [{
        "id": "[resourceId('Microsoft.Batch/batchAccounts/applications', 'mybatchaccount', "
              "'examples')]", "version": "1.0.0"}]


def test_the_job_carries_the_common_environment(tmp_path, example_lake):
    job = spec_all(tmp_path)["job.json"]
    assert job["poolInfo"] == {"poolId": "examples"}
    assert (job["usesTaskDependencies"], job["onAllTasksComplete"], job["onTaskFailure"]) == (
        True, "terminatejob", "performexitoptionsjobaction")
    assert {e["name"]: e["value"] for e in job["commonEnvironmentSettings"]} == {
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "WORKER_LAKE_URL": "abfss://data@mydatalake.dfs.core.windows.net/",
        "WORKER_VAULT_URL": "https://my-vault.vault.azure.net",
        "WORKER_TASK_SLOTS": "2"}


def test_one_task_per_partition_and_a_merge_over_their_id_range(tmp_path, example_lake):
    docs = spec_all(tmp_path)
    tasks = docs["tasks-001.json"]
    assert [t["id"] for t in tasks] == ["1", "2", "3", "merge"]
    days = ["2024-01-31", "2024-02-01", "2024-02-02"]
    assert [t["displayName"] for t in tasks[:3]] == ["raw/sales/date=%s" % d for d in days]
    words = shlex.split(tasks[0]["commandLine"])
    assert words[4:] == ["run", "handlers.pipeline:partition", "--param",
                         "path=raw/sales/date=2024-01-31"]
    merge = tasks[3]
    assert merge["dependsOn"] == {"taskIdRanges": [{"start": 1, "end": 3}]}
    assert shlex.split(merge["commandLine"])[4:] == [
        "run", "handlers.pipeline:merge", "--param",
        "items_file=.worker-jobs/sales-daily/items.json"]
    assert docs["lake/.worker-jobs/sales-daily/items.json"] == {
        "job_id": "sales-daily", "items": ["raw/sales/date=%s" % d for d in days],
        "task_ids": ["1", "2", "3"]}
    first = tasks[0]
    assert first["constraints"] == {"maxTaskRetryCount": 2, "maxWallClockTime": "PT11M10S"}
    assert {e["name"]: e["value"] for e in first["environmentSettings"]} == {
        "WORKER_REQUIRED_SLOTS": "1", "WORKER_TASK_RETRIES": "2", "WORKER_TIMEOUT": "600",
        "WORKER_GRACE": "10"}


def test_exit_codes_map_to_batch_actions(tmp_path, example_lake):
    tasks = spec_all(tmp_path)["tasks-001.json"]
    conditions = tasks[0]["exitConditions"]
    assert {e["code"]: e["exitOptions"]["jobAction"] for e in conditions["exitCodes"]} == {
        1: "none", 2: "disable", 3: "none", 4: "none", 5: "none", 124: "none", 130: "none",
        143: "none"}
    assert {e["exitOptions"]["dependencyAction"] for e in conditions["exitCodes"]} == {
        "satisfy"}  # the spec's dependency_action: a failed day does not block the merge
    assert conditions["default"] == {"jobAction": "none", "dependencyAction": "satisfy"}
    assert conditions["preProcessingError"]["jobAction"] == "disable"
    merge = tasks[3]["exitConditions"]
    assert merge["default"]["dependencyAction"] == "block"


def test_a_long_range_fans_out_in_collections_of_100(tmp_path, capsys):
    docs = spec_all(tmp_path, "--set", "tasks.items={range = [2023-01-01, 2023-09-07]}",
                    "--set", "tasks.first_id=1000", "--set", "merge.id=summary")
    names = sorted(n for n in docs if n.startswith("tasks-"))
    assert names == ["tasks-001.json", "tasks-002.json", "tasks-003.json"]
    sizes = [len(docs[n]) for n in names]
    assert sizes == [100, 100, 51]  # 250 days and the merge task
    every = [t for n in names for t in docs[n]]
    assert every[0]["displayName"] == "2023-01-01" and every[249]["displayName"] == "2023-09-07"
    assert every[-1]["id"] == "summary"
    assert every[-1]["dependsOn"] == {"taskIdRanges": [{"start": 1000, "end": 1249}]}
    for name in names:
        check_batch("TaskAddCollectionParameter", {"value": docs[name]})
    assert docs["lake/.worker-jobs/sales-daily/items.json"]["task_ids"][-1] == "1249"


def test_a_rerun_leaves_no_collection_of_an_earlier_one(tmp_path):
    spec_all(tmp_path, "--set", "tasks.items={range = [1, 150]}")
    docs = spec_all(tmp_path, "--set", "tasks.items={list = [\"a\"]}")
    assert sorted(n for n in docs if n.startswith("tasks-")) == ["tasks-001.json"]


def test_exec_tasks_fan_out_one_per_file_with_exec_placeholders_kept(tmp_path, example_lake):
    template = json.dumps(["exec", "--input", "{item}", "--output", "copies/{item_name}/", "--",
                           "cp", "{input}", "{output_dir}/{name}"])
    out = tmp_path / "specs"
    assert main(["spec", "tasks", "--spec", str(EXAMPLE_SPEC), *PACKAGE, "--out", str(out),
                 "--set", "tasks.items={lake = \"raw/sales/**/*.parquet\"}",
                 "--set", "tasks.command=" + template]) == 0
    tasks = json.loads((out / "tasks-001.json").read_text())
    assert shlex.split(tasks[0]["commandLine"])[4:] == [
        "exec", "--input", "raw/sales/date=2024-01-31/part-0.parquet", "--output",
        "copies/part-0.parquet/", "--", "cp", "{input}", "{output_dir}/{name}"]
    assert len(tasks) == 4  # three files and the merge


def test_pool_and_job_print_to_stdout_and_autoscale(tmp_path, capsys):
    assert main(["spec", "pool", "--spec", str(EXAMPLE_SPEC), *PACKAGE,
                 "--set", "pool.autoscale=$TargetDedicatedNodes = 2;",
                 "--set", "pool.autoscale_minutes=5"]) == 0
    template = json.loads(capsys.readouterr().out)
    check_pool(template)
    assert template["resources"][0]["properties"]["scaleSettings"] == {"autoScale": {
        "formula": "$TargetDedicatedNodes = 2;", "evaluationInterval": "PT5M"}}
    assert main(["spec", "job", "--spec", str(EXAMPLE_SPEC), *PACKAGE]) == 0
    check_batch("JobAddParameter", json.loads(capsys.readouterr().out))


def test_the_package_manifest_gives_the_app_id_and_version(tmp_path, capsys):
    package = tmp_path / "app.zip"
    with zipfile.ZipFile(str(package), "w") as archive:
        archive.writestr("manifest.json", json.dumps({"name": "sales-app", "version": "2.1"}))
    assert main(["spec", "pool", "--spec", str(EXAMPLE_SPEC), "--package", str(package)]) == 0
    (resource,) = json.loads(capsys.readouterr().out)["resources"]
    assert resource["properties"]["applicationPackages"][0]["version"] == "2.1"
    assert "AZ_BATCH_APP_PACKAGE_sales_app_2_1" in resource["properties"]["startTask"][
        "commandLine"]


# -- the image goes with the package's Python ----------------------------------------------

JAMMY = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts",
         "version": "latest"}
NOBLE = {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
         "version": "latest"}


def manifest_zip(tmp_path: Path, python: str) -> Path:
    """An application package as far as spec reads one: its manifest."""
    package = tmp_path / ("app-%s.zip" % python)
    with zipfile.ZipFile(str(package), "w") as archive:
        archive.writestr("manifest.json", json.dumps({"name": "sales-app", "version": "2.1",
                                                      "python": python}))
    return package


def pool_vm(capsys, *options: str) -> Dict[str, Any]:
    assert main(["spec", "pool", "--spec", str(EXAMPLE_SPEC), *options]) == 0
    (resource,) = json.loads(capsys.readouterr().out)["resources"]
    return resource["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]


@pytest.mark.parametrize("python, image, agent", [
    ("3.8", JAMMY, "batch.node.ubuntu 22.04"),
    ("3.12", NOBLE, "batch.node.ubuntu 24.04"),
])
def test_the_pool_image_follows_the_packages_python(tmp_path, capsys, python, image, agent):
    vm = pool_vm(capsys, "--package", str(manifest_zip(tmp_path, python)))
    assert vm == {"imageReference": image, "nodeAgentSkuId": agent}
    # without a package, [package] python says it; unsaid, it is the package command's 3.8
    assert pool_vm(capsys, *PACKAGE, "--set", "package.python=" + python) == vm
    if python == "3.8":
        assert pool_vm(capsys, *PACKAGE) == vm


def test_the_24_04_pool_validates_with_the_sdk_models(tmp_path, capsys):
    assert main(["spec", "pool", "--spec", str(EXAMPLE_SPEC), "--package",
                 str(manifest_zip(tmp_path, "3.12"))]) == 0
    check_pool(json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("image, reference", [
    ('{publisher = "microsoft-dsvm", offer = "ubuntu-hpc", sku = "2404"}',
     {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2404", "version": "latest"}),
    ('{publisher = "canonical", offer = "ubuntu-24_04-lts", sku = "server", '
     'version = "24.04.202604140"}', dict(NOBLE, version="24.04.202604140")),
    ('{id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/'
     'worker/versions/1.0.0"}', {"id": "/subscriptions/s/resourceGroups/g/providers/"
                                       "Microsoft.Compute/galleries/x/images/worker/versions/"
                                       "1.0.0"}),
])
def test_an_image_in_the_spec_wins(tmp_path, capsys, image, reference):
    vm = pool_vm(capsys, "--package", str(manifest_zip(tmp_path, "3.12")),
                 "--set", "pool.image=" + image, "--set", "pool.node_agent=batch.node.ubuntu 24.04")
    assert vm == {"imageReference": reference, "nodeAgentSkuId": "batch.node.ubuntu 24.04"}


def test_a_node_agent_that_is_not_ubuntu_is_the_users_own(tmp_path, capsys):
    vm = pool_vm(capsys, "--package", str(manifest_zip(tmp_path, "3.12")),
                 "--set", 'pool.image={publisher = "almalinux", offer = "almalinux-x86_64", '
                          'sku = "9-gen2"}', "--set", "pool.node_agent=batch.node.el 9")
    assert vm["nodeAgentSkuId"] == "batch.node.el 9"


@pytest.mark.parametrize("python, options, message", [
    ("3.12", ["--set", 'pool.image={publisher = "canonical", offer = '
                       '"0001-com-ubuntu-server-jammy", sku = "22_04-lts"}',
              "--set", "pool.node_agent=batch.node.ubuntu 22.04"],
     "{spec}: [pool] node_agent 'batch.node.ubuntu 22.04' makes Ubuntu 22.04 nodes, but the "
     "package is built for Python 3.12, which the worker provisions on Ubuntu 24.04: set [pool] "
     "image and node_agent to a 24.04 image with 'batch.node.ubuntu 24.04' (or remove both to "
     "take canonical ubuntu-24_04-lts server), or build the package with --python 3.8"),
    ("3.8", ["--set", 'pool.image={publisher = "canonical", offer = "ubuntu-24_04-lts", '
                      'sku = "server"}', "--set", "pool.node_agent=batch.node.ubuntu 24.04"],
     "{spec}: [pool] node_agent 'batch.node.ubuntu 24.04' makes Ubuntu 24.04 nodes, but the "
     "package is built for Python 3.8, which the worker provisions on Ubuntu 22.04: set [pool] "
     "image and node_agent to a 22.04 image with 'batch.node.ubuntu 22.04' (or remove both to "
     "take canonical 0001-com-ubuntu-server-jammy 22_04-lts), or build the package with "
     "--python 3.12"),
    ("3.12", ["--set", 'pool.image={publisher = "canonical", offer = "0001-com-ubuntu-server-'
                       'focal", sku = "20_04-lts"}', "--set",
              "pool.node_agent=batch.node.ubuntu 20.04"],
     "{spec}: [pool] node_agent 'batch.node.ubuntu 20.04' makes Ubuntu 20.04 nodes, but the "
     "package is built for Python 3.12, which the worker provisions on Ubuntu 24.04: set [pool] "
     "image and node_agent to a 24.04 image with 'batch.node.ubuntu 24.04' (or remove both to "
     "take canonical ubuntu-24_04-lts server)"),
    ("3.12", ["--set", 'pool.image={publisher = "canonical", offer = "ubuntu-24_04-lts", '
                       'sku = "server"}'],
     "{spec}: [pool] image needs [pool] node_agent too (the image and the node agent that goes "
     "with it, e.g. 'batch.node.ubuntu 24.04' for 'ubuntu-24_04-lts'): add it, or remove "
     "[pool] image"),
    ("3.8", ["--set", "pool.node_agent=batch.node.ubuntu 22.04"],
     "{spec}: [pool] node_agent needs [pool] image too (the image and the node agent that goes "
     "with it, e.g. 'batch.node.ubuntu 22.04' for '0001-com-ubuntu-server-jammy'): add it, or "
     "remove [pool] node_agent"),
    ("3.12", ["--set", 'pool.image={publisher = "canonical", offer = "ubuntu-24_04-lts"}',
              "--set", "pool.node_agent=batch.node.ubuntu 24.04"],
     "{spec}: [pool] image must be {{publisher, offer, sku[, version]}} or {{id}} (strings), "
     "got {{'publisher': 'canonical', 'offer': 'ubuntu-24_04-lts'}}; e.g. image = {{publisher "
     "= \"canonical\", offer = \"ubuntu-24_04-lts\", sku = \"server\"}}"),
    ("3.12", ["--set", "package.python=3.8"],
     "{spec} says [package] python = '3.8', but the package was built for Python 3.12: remove "
     "[package] python, or build the package with --python 3.8"),
    ("3.11", [],
     "{spec}: the package is built for Python 3.11, but the worker's nodes run Python 3.8 "
     "(Ubuntu 22.04) or Python 3.12 (Ubuntu 24.04): build the package with --python 3.8 or "
     "3.12"),
])
def test_an_image_that_does_not_go_with_the_package_is_one_line_naming_the_key(
        tmp_path, capsys, python, options, message):
    assert main(["spec", "pool", "--spec", str(EXAMPLE_SPEC), "--package",
                 str(manifest_zip(tmp_path, python)), *options]) == 2
    assert capsys.readouterr().err == "spec: error: %s\n" % message.format(spec=EXAMPLE_SPEC)


@pytest.mark.parametrize("seconds", [1, 59, 60, 690, 3600, 3661, 86400, 90061, 1209600])
def test_durations_are_written_as_the_sdk_writes_them(seconds):
    text = duration(seconds)
    constraints = batch_models_14().TaskConstraints(
        max_wall_clock_time=datetime.timedelta(seconds=seconds))
    assert constraints.serialize() == {"maxWallClockTime": text}


def test_a_nasty_item_is_one_argument_of_the_command_line(tmp_path):
    nasty = "eu 'single' \"double\" $HOME `id` \\back\\slash ünïcødé 日本 ; | &"
    out = tmp_path / "specs"
    assert main(["spec", "tasks", "--spec", str(EXAMPLE_SPEC), *PACKAGE, "--out", str(out),
                 "--set", "tasks.items={list = [%s]}" % json.dumps(nasty)]) == 0
    (task, _merge) = json.loads((out / "tasks-001.json").read_text(encoding="utf-8"))
    assert shlex.split(task["commandLine"])[-1] == "path=" + nasty


# -- bad input: one line, its own exit code --------------------------------------------------

@pytest.mark.parametrize("options, code, message", [
    (["--set", "pool.nodes"], 2,
     "--set 'pool.nodes': expected SECTION.KEY=VALUE, e.g. --set job.id=sales-2024-02"),
    (["--set", "pool.colour=blue"], 2,
     "--set pool.colour: unknown key 'colour' in [pool]; the keys are account, account_url, "
     "autoscale, autoscale_minutes, client_id, environment, fill, id, identity, image, "
     "node_agent, nodes, resource_group, spot_nodes, start_task_retries, subscription, "
     "task_slots, vm_size"),
    (["--set", "pool.nodes=two"], 2, "--set pool.nodes: [pool] nodes must be a whole number, "
                                     "got 'two'"),
    (["--set", "tasks.retries=-1"], 2, "--set tasks.retries: [tasks] retries must not be "
                                       "negative, got -1"),
    (["--set", "pool.fill=tight"], 2, "--set pool.fill: [pool] fill must be one of pack, "
                                      "spread, got 'tight'"),
    (["--set", "tasks.items={list = []}"], 30, "the fan-out's items {list = []} gave no item: "
                                               "nothing to run; check the source"),
    (["--set", "tasks.items={range = [2024-02-01, 2024-01-01]}"], 30, None),
    (["--set", "tasks.items={lake = \"raw/nothing/date=*/\"}"], 30, None),
    (["--set", "tasks.items={range = [1, 5], list = [\"a\"]}"], 2, None),
    (["--set", "merge.id=merge task"], 31,
     "merge task id 'merge task' is not one Batch takes: 1 to 64 letters, digits, '-' and '_'"),
    (["--set", "job.id=" + "j" * 65], 31, None),
    (["--set", "merge.id=2"], 31, "task id '2' is used twice in the job (ids are "
                                  "case-insensitive): give the merge task another [merge] id"),
    (["--set", "pool.identity="], 2, None),
    (["--set", "tasks.command=[\"run\", \"handlers.pipeline:partition\"]"], 2,
     "[tasks] command never uses {item} or {item_name}: every task of the fan-out would run "
     "the same command"),
    (["--set", "tasks.command=[\"run\", \"x:y\", \"--param\", \"f={items_file}\"]"], 2,
     "[tasks] command uses {items_file}, which only the merge task has; use {item}, "
     "{item_name}, {task_id}, {job_id}"),
])
def test_bad_spec_input_is_one_line_with_its_code(tmp_path, example_lake, capsys, options,
                                                  code, message):
    assert main(["spec", "all", "--spec", str(EXAMPLE_SPEC), *PACKAGE, "--out",
                 str(tmp_path / "specs"), *options]) == code
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("spec: error: ")
    if message:
        assert err == "spec: error: %s\n" % message
    assert not list(tmp_path.glob("specs/tasks-*.json"))  # nothing half-written


def test_tasks_are_written_a_collection_at_a_time_a_task_per_line(tmp_path, example_lake):
    """The collections are written as they are made (a fan-out of 100,000 tasks would not
    fit in memory as documents): each file at most 100 tasks, one per line."""
    assert main(["spec", "tasks", "--spec", str(EXAMPLE_SPEC), *PACKAGE, "--out",
                 str(tmp_path / "specs"), "--set", "tasks.items={range = [1, 250]}"]) == 0
    files = sorted((tmp_path / "specs").glob("tasks-*.json"))
    sizes = [len(json.loads(p.read_text())) for p in files]
    assert sizes == [100, 100, 51]  # 250 and the merge
    lines = files[0].read_text().splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 102
    assert json.loads(lines[1].rstrip(","))["id"] == "1"


def test_a_missing_key_and_file_and_folder_are_named(tmp_path, capsys):
    bare = tmp_path / "batch.toml"
    bare.write_text("[pool]\nid = \"p\"\n")
    assert main(["spec", "pool", "--spec", str(bare), *PACKAGE]) == 2
    assert capsys.readouterr().err == (
        "spec: error: %s has no [pool] account (the Batch account's name): add it, or pass "
        "--set pool.account=...\n" % bare)
    assert main(["spec", "pool", "--spec", str(tmp_path / "none.toml")]) == 2
    assert "spec file %s/none.toml does not exist" % tmp_path in capsys.readouterr().err
    bare.write_text("[pool\n")
    assert main(["spec", "pool", "--spec", str(bare)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert main(["spec", "tasks", "--spec", str(EXAMPLE_SPEC), *PACKAGE]) == 2
    assert capsys.readouterr().err == "spec: error: spec tasks writes a folder: pass --out DIR\n"


def test_an_unset_lake_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WORKER_LAKE_URL", raising=False)
    assert main(["spec", "tasks", "--spec", str(EXAMPLE_SPEC), *PACKAGE, "--out",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "spec: error: [tasks] items.lake lists the lake, but WORKER_LAKE_URL is not set: set it "
        "to the lake root the job reads\n")


def test_spec_imports_no_azure_sdk_or_lake_for_a_pool(tmp_path):
    """The documents are plain JSON: making a pool touches neither the SDKs nor the lake."""
    import subprocess
    import sys

    code = ("import sys; from worker.cli import main; "
            "rc = main(['spec', 'pool', '--spec', %r, '--set', 'package.app=a', '--set', "
            "'package.version=1']); "
            "print(rc, sorted(m for m in sys.modules if m.startswith(('azure', 'worker.lake'))))"
            % str(EXAMPLE_SPEC))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(REPO)).stdout.splitlines()[-1]
    assert out == "0 []"

