"""The deploy loop's errors: one line, the exit code of its kind, the service's words and
request ids, and the fix. Against the local Batch service: an application version that does
not exist, a wrong account, a pool key Azure cannot change (and one it can), the lake
refusing the items file to an identity without its role, a missing role on the Batch
account (on its account plane; and Contributor, which grants no data action, on its data
plane), the pool quota, and a core quota that leaves the pool without nodes (``status``
says why).

On Python 3.8 the commands refuse to run (one line, exit 2); ``--help`` works anywhere and
imports no Azure SDK.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from deploy_support import make_loop

needs_sdk = pytest.mark.skipif(sys.version_info < (3, 9),
                               reason="the deploy loop needs azure-batch 15 (Python >= 3.9)")


@pytest.fixture
def loop(batch_service, monkeypatch, tmp_path):
    return make_loop(batch_service, monkeypatch, tmp_path)


def one_line(err: str, command: str = "deploy") -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(command + ": error: "), err
    return lines[0]


@needs_sdk
def test_an_application_version_that_does_not_exist_names_the_fix(loop):
    code, out, err = loop.cli("deploy", "--set", "package.version=9.9.9")
    assert code == 2
    assert one_line(err) == (
        "deploy: error: application mini version 9.9.9 is not in Batch account %s: pass "
        "--package app.zip to upload it (python -m worker package builds it)"
        % loop.env["AZURE_BATCH_ACCOUNT"])


@needs_sdk
def test_a_package_version_is_uploaded_once_and_refused_with_other_bytes(loop):
    from deploy_support import mini_package

    loop.spec.write_text(loop.spec.read_text().replace('version = "1.0.0"\n', ""))
    first = mini_package(loop.folder / "a", version="2.0.0")
    code, out, err = loop.cli("deploy", "--package", str(first))
    assert code == 0, err
    assert "  package  mini 2.0.0: uploaded (%d bytes) and activated" % first.stat().st_size \
        in out
    assert re.search(r"^  requests \d+ to the Batch account, \d+ to its account plane, 1 for "
                     r"the package upload\n", out, re.MULTILINE), out
    code, out, err = loop.cli("deploy", "--package", str(first))
    assert code == 0, err
    assert "  package  mini 2.0.0: there with the same bytes: not uploaded again" in out
    # what was sent: nothing uploaded, the version there read to compare
    assert re.search(r"^  requests \d+ to the Batch account, \d+ to its account plane, 0 for "
                     r"the package upload, [12] reading the package there\n", out,
                     re.MULTILINE), out
    other = loop.folder / "b" / "mini-2.0.0.zip"
    other.parent.mkdir()
    import zipfile

    with zipfile.ZipFile(first) as source, zipfile.ZipFile(other, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        target.writestr("extra.txt", "other bytes")
    code, out, err = loop.cli("deploy", "--package", str(other))
    assert code == 2
    assert one_line(err) == (
        "deploy: error: application mini version 2.0.0 is in Batch account %s with other "
        "bytes than %s: give the package a new version (python -m worker package --version X, "
        "or [package] version), or delete that version (az batch application package delete)"
        % (loop.env["AZURE_BATCH_ACCOUNT"], other))


@needs_sdk
def test_a_new_package_version_on_a_pool_with_nodes_is_refused_before_the_job(loop):
    """Azure gives a pool's new package version only to nodes that join, reboot or are
    reimaged: a job of it on the nodes there would fail every task (exit 21). deploy stops
    before it changes the pool or creates the job, and names the fix; once the pool has no
    nodes, the same deploy goes through and its tasks run with the new version."""
    from deploy_support import mini_package

    assert loop.cli("deploy")[0] == 0
    mgmt = loop.service.management_client()

    def pool():
        return mgmt.pool.get(loop.env["AZURE_RESOURCE_GROUP"], loop.env["AZURE_BATCH_ACCOUNT"],
                             "loop").as_dict()["properties"]

    def wait_nodes(count):
        deadline = time.monotonic() + 120
        while (pool().get("currentDedicatedNodes") or 0) != count:
            assert time.monotonic() < deadline, "the pool did not reach %d node(s)" % count
            time.sleep(0.2)

    wait_nodes(2)
    new = mini_package(loop.folder / "b", version="1.1.0")
    argv = ["deploy", "--package", str(new), "--set", "package.version=1.1.0",
            "--set", "job.id=loop2"]
    refusal = ("deploy: error: pool loop has 2 node(s), and Azure gives a pool's new "
               "application package (mini 1.1.0) only to nodes that join, reboot or are "
               "reimaged: the job's tasks would fail there (exit 21, no package variable): "
               "deploy to a new pool (--set pool.id=NAME), or resize pool loop to 0 nodes (az "
               "batch pool resize) and deploy again")
    code, out, err = loop.cli(*argv, "--dry-run")
    assert code == 2 and one_line(err) == refusal
    assert "  package  mini 1.1.0: would upload" in out
    code, out, err = loop.cli(*argv)
    assert code == 2 and one_line(err) == refusal
    assert "  package  mini 1.1.0: uploaded" in out and "  job " not in out
    assert [r["version"] for r in pool()["applicationPackages"]] == ["1.0.0"]
    from azure.core.exceptions import ResourceNotFoundError

    from worker.deploy.cloud.account import Clients, resolve

    own = Clients(resolve())
    with pytest.raises(ResourceNotFoundError):
        own.batch.get_job("loop2")

    assert loop.cli("deploy", "--set", "pool.nodes=0")[0] == 0  # the fix: no nodes
    wait_nodes(0)
    code, out, err = loop.cli(*argv, "--set", "pool.nodes=1", "--dry-run")
    assert code == 0, err
    assert "  pool     loop: would update startTask, applicationPackages, scaleSettings" in out
    assert "  job      loop2: would create it\n  tasks    5: would add 5, 0 there\n" in out
    code, out, err = loop.cli(*argv, "--set", "pool.nodes=1")
    assert code == 0, err
    assert "  pool     loop: updated startTask, applicationPackages, scaleSettings" in out, out
    code, out, err = loop.cli("status", "loop2", "--watch", "--interval", "0.3")
    assert code == 40, out + err  # in/3.txt is bad: exit 4, and the others ran (no exit 21)
    assert "3 succeeded, 1 failed" in out and "exit 21" not in out
    assert "failed tasks:\n  3 (in/3.txt): exit 4 (" in out
    own.close()


@needs_sdk
def test_a_package_of_another_version_than_the_spec_names_is_refused(loop):
    from deploy_support import mini_package

    other = mini_package(loop.folder / "a", version="2.0.0")
    code, out, err = loop.cli("deploy", "--package", str(other))
    assert code == 2
    assert one_line(err) == (
        "deploy: error: --package %s is mini 2.0.0, but the spec names [package] app mini "
        "version 1.0.0: leave [package] out of the spec, or pass the package it names" % other)


@needs_sdk
def test_a_wrong_account_names_where_it_looked(loop, monkeypatch):
    monkeypatch.setenv("AZURE_BATCH_ACCOUNT", "nosuchaccount")
    code, out, err = loop.cli("deploy")
    assert code == 2
    line = one_line(err)
    assert line.startswith("deploy: error: reading application mini version 1.0.0: 404 "
                           "ResourceNotFound: ")
    assert line.endswith(
        "there is no Batch account nosuchaccount in resource group %s of subscription %s: "
        "check [pool] account, resource_group and subscription (or AZURE_BATCH_ACCOUNT, "
        "AZURE_RESOURCE_GROUP, AZURE_SUBSCRIPTION_ID)"
        % (loop.env["AZURE_RESOURCE_GROUP"], loop.env["AZURE_SUBSCRIPTION_ID"]))
    assert "x-ms-request-id" not in line and "(request-id " in line


@needs_sdk
def test_an_unreachable_account_url_is_a_configuration_error(loop, monkeypatch):
    monkeypatch.setenv("AZURE_BATCH_ENDPOINT", "https://nosuchaccount.invalid")
    code, out, err = loop.cli("status", "job1")
    assert code == 2
    assert one_line(err, "status").endswith("the host name does not resolve; check "
                                            "--account-url or AZURE_BATCH_ENDPOINT")


@needs_sdk
def test_a_pool_key_azure_cannot_change_is_named_and_one_it_can_is_updated(loop):
    code, out, err = loop.cli("deploy")
    assert code == 0, err
    code, out, err = loop.cli("deploy", "--set", "pool.vm_size=Standard_D4a_v4")
    assert code == 2
    assert one_line(err) == (
        "deploy: error: pool loop exists in account %s with another vmSize (standard_d2a_v4 "
        "there, standard_d4a_v4 in the spec): Azure changes it only when a pool is created "
        "or has no nodes: set [pool] vm_size to the pool's, or give [pool] id a new name (or "
        "delete the pool, or resize it to 0 nodes)" % loop.env["AZURE_BATCH_ACCOUNT"])
    code, out, err = loop.cli("deploy", "--set", "pool.nodes=1", "--dry-run")
    assert code == 0, err
    assert "  pool     loop: would update scaleSettings" in out
    assert "  tasks    5: would add 0, 5 there" in out
    code, out, err = loop.cli("deploy", "--set", "pool.nodes=1")
    assert code == 0, err
    assert "  pool     loop: updated scaleSettings" in out
    mgmt = loop.service.management_client()

    def pool():
        return mgmt.pool.get(loop.env["AZURE_RESOURCE_GROUP"], loop.env["AZURE_BATCH_ACCOUNT"],
                             "loop").as_dict()["properties"]

    assert pool()["scaleSettings"]["fixedScale"]["targetDedicatedNodes"] == 1
    deadline = time.monotonic() + 60
    while pool().get("currentDedicatedNodes") != 1:
        assert time.monotonic() < deadline, "the pool did not shrink to its node"
        time.sleep(0.2)
    code, out, err = loop.cli("deploy", "--set", "pool.nodes=1",
                              "--set", "pool.environment={COLOUR = \"blue\"}")
    assert code == 0, err
    assert "  pool     loop: updated startTask; its 1 node(s) get the new start task after " \
           "a reboot" in out


@needs_sdk
def test_a_lake_identity_without_its_role_cannot_write_the_items_file(loop, monkeypatch):
    from worker.emulators.handle import EmulatorHandle

    reader = EmulatorHandle(loop.service.set).reader_client_id
    monkeypatch.setenv("AZURE_CLIENT_ID", reader)
    from worker.identity import reset_credential

    reset_credential()
    try:
        code, out, err = loop.cli("deploy", "--job-only")
    finally:
        reset_credential()
    assert code == 2
    line = one_line(err)
    assert "Storage Blob Data Contributor" in line, line


ROLE_FIX = ("ask for the \"Azure Batch Data Contributor\" role on Batch account localbatch (az "
            "role assignment create --role \"Azure Batch Data Contributor\" --assignee YOU "
            "--scope ACCOUNT_ID)")
QUOTA_FIX = ("the account's quota is reached: ask for more (Azure portal, the Batch account's "
             "Quotas) or free what holds it")


@needs_sdk
def test_a_missing_role_on_the_account_plane_names_the_role(loop):
    loop.service.assign_roles(loop.env["AZURE_CLIENT_ID"])  # no role on the Batch account
    code, out, err = loop.cli("deploy")
    assert code == 2, err
    line = one_line(err)
    assert line.startswith(
        "deploy: error: reading application mini version 1.0.0: 403 AuthorizationFailed: The "
        "client '%s' with object id '%s' does not have authorization to perform action "
        "'Microsoft.Batch/batchAccounts/applications/versions/read' over scope "
        % ((loop.env["AZURE_CLIENT_ID"],) * 2)), line
    assert "(request-id " in line and line.endswith(ROLE_FIX), line


@needs_sdk
def test_contributor_without_data_actions_cannot_add_jobs_and_is_told_the_role(loop):
    """Azure's Contributor manages the account plane (the pool is created) but grants no data
    action: the data plane refuses its jobs."""
    loop.service.assign_roles(loop.env["AZURE_CLIENT_ID"], "Contributor")
    code, out, err = loop.cli("deploy")
    assert code == 2, err
    line = one_line(err)
    assert re.match(r"deploy: error: [a-z]+ job loop1: 403 AuthorizationFailure: This request "
                    r"is not authorized to perform this operation\. \(request-id ", line), line
    assert line.endswith(ROLE_FIX), line
    assert "  pool     loop: created" in out


@needs_sdk
def test_the_pool_quota_names_the_quotas_page(loop):
    loop.service.configure(pool_quota=0)
    code, out, err = loop.cli("deploy")
    assert code == 2, err
    line = one_line(err)
    assert line.startswith("deploy: error: creating pool loop: 409 PoolQuotaReached: Pool quota "
                           "for the account has been reached."), line
    assert "(request-id " in line and line.endswith(QUOTA_FIX), line


@needs_sdk
def test_a_core_quota_leaves_the_pool_short_and_status_says_why(loop):
    loop.service.configure(dedicated_core_quota=0)
    code, out, err = loop.cli("deploy")
    assert code == 0, err
    code, out, err = loop.cli("status", "loop1")
    assert code == 41, out + err  # nothing can run, nothing failed: still running
    assert "  pool loop: 0 node(s), steady; resize error AccountCoreQuotaReached: The " \
           "specified account has reached core quota\n" in out


@pytest.mark.skipif(sys.version_info >= (3, 9), reason="the refusal of Python 3.8")
@pytest.mark.parametrize("command", [["deploy"], ["status", "j"], ["logs", "j", "t"],
                                     ["results", "j"], ["rerun", "j", "--failed"]])
def test_on_python_38_the_commands_refuse_in_one_line(command):
    proc = subprocess.run([sys.executable, "-m", "worker", *command], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr == (
        "%s: error: %s needs Python >= 3.9 and the deploy extra (azure-batch 15, "
        "azure-mgmt-batch 19); this is Python 3.8: in a checkout, bash bootstrap/devenv.sh "
        "--python 3.12 then .worker/dev-py312/bin/python -m worker ...; elsewhere pip install "
        "'batch-worker[deploy]' in a Python >= 3.9\n" % (command[0], command[0]))


@pytest.mark.parametrize("argv", [["--help"], ["deploy", "--help"], ["status", "--help"]])
def test_help_imports_no_azure_sdk(argv):
    code = ("import sys\nfrom worker.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in sys.modules if m.startswith('azure')))" % argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout
