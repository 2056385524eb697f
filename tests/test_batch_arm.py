"""The local Batch account's account plane (ARM), driven by azure-mgmt-batch pointed at it
(19.x on 3.12, 18.x on 3.8) with a token from the emulated identity endpoint: the account
and its keys, an application and a package version (created with a storageUrl whose SAS is
Azure's, the zip uploaded there with the Blob SDK, activated, named by a pool the account
plane creates, and run from by a task on its node), and the pool of ``python -m worker spec
pool`` created, updated and refused where Azure refuses."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict

import pytest
from batch_raw import Raw
from support import wait_for

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def arm(batch_service, monkeypatch):
    env = batch_service.environment()
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST",
                       env["AZURE_POD_IDENTITY_AUTHORITY_HOST"])
    return batch_service.management_client(retry_total=0), env["AZURE_RESOURCE_GROUP"], \
        env["AZURE_BATCH_ACCOUNT"]


def spec_pool(tmp_path: Path, *sets: str) -> Dict[str, Any]:
    """The pool resource `spec pool` writes for examples/, from a package's manifest."""
    package = tmp_path / "app.zip"
    with zipfile.ZipFile(str(package), "w") as handle:
        handle.writestr("manifest.json", json.dumps({"name": "examples", "version": "1.0.0"}))
    done = subprocess.run([sys.executable, "-m", "worker", "spec", "pool", "--spec",
                           str(REPO / "examples" / "batch.toml"), "--package", str(package),
                           *[a for s in sets for a in ("--set", s)]],
                          capture_output=True, text=True, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    (resource,) = json.loads(done.stdout)["resources"]
    return resource


def resolved(resource: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    """The template's resource as a PUT body: resourceId() resolved, as a deployment does."""
    body = {"identity": resource["identity"], "properties": dict(resource["properties"])}
    body["properties"]["applicationPackages"] = [
        {"id": "%s/applications/examples" % prefix, "version": p["version"]}
        for p in resource["properties"]["applicationPackages"]]
    return body


def test_the_account_and_its_keys(arm, batch_service):
    client, group, account = arm
    found = client.batch_account.get(group, account)
    assert "https://" + found.account_endpoint == batch_service.endpoint
    assert client.batch_account.get_keys(group, account).primary == batch_service.key


def test_a_package_version_is_created_uploaded_activated_and_used_by_a_node(
        arm, batch_service, tmp_path):
    """The account plane's whole path of a package: a version created, its zip PUT to the
    storageUrl (a SAS as Azure's: the blob, read and write, four hours), activated, named
    by a pool created through the account plane, and run from by a task on its node."""
    from urllib.parse import parse_qs, urlsplit

    client, group, account = arm
    client.application.create(group, account, "tool", {"properties": {"displayName": "Tool"}})
    version = client.application_package.create(group, account, "tool", "2.0")
    assert str(version.state).lower().endswith("pending")
    url = version.storage_url
    assert url.startswith(batch_service.environment()["WORKER_LAKE_URL"].rsplit("/", 1)[0])
    sas = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert (sas["sp"], sas["sr"]) == ("rw", "b")
    lifetime = _stamp(sas["se"]) - _stamp(sas["st"])
    assert lifetime == 4 * 3600 + 300  # from five minutes ago, for four hours
    assert abs(_stamp(sas["se"]) - version.storage_url_expiry.timestamp()) < 2
    archive = tmp_path / "tool.zip"
    with zipfile.ZipFile(str(archive), "w") as handle:
        handle.writestr("hello.txt", "hello from tool\n")
        handle.writestr("bin/tool.sh", "echo tool ran in $PWD\n")
    upload(batch_service, url, archive.read_bytes())
    assert download(batch_service, url) == archive.read_bytes()  # the SAS reads it back
    active = client.application_package.activate(group, account, "tool", "2.0",
                                                 {"format": "zip"})
    assert str(active.state).lower().endswith("active")
    client.application.update(group, account, "tool", {"properties": {"defaultVersion": "2.0"}})
    raw = Raw(batch_service)
    assert raw.send("GET", "/applications/tool")[1]["versions"] == ["2.0"]

    prefix = batch_service.service.arm_prefix()
    client.pool.create(group, account, "tools", {"properties": {
        "vmSize": "STANDARD_D2A_V4", "deploymentConfiguration": {
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts",
                                   "sku": "server", "version": "latest"},
                "nodeAgentSkuId": "batch.node.ubuntu 24.04"}},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 1}},
        "applicationPackages": [{"id": prefix + "/applications/tool", "version": "2.0"}]}})
    assert raw.send("POST", "/jobs", {"id": "j", "poolInfo": {"poolId": "tools"}})[0] == 201
    command = "/bin/bash -c 'cat $AZ_BATCH_APP_PACKAGE_tool_2_0/hello.txt; " \
              "bash $AZ_BATCH_APP_PACKAGE_tool_2_0/bin/tool.sh'"
    assert raw.send("POST", "/jobs/j/tasks", {"id": "t", "commandLine": command})[0] == 201
    done = wait_for(lambda: (lambda t: t["state"] == "completed" and t)(
        raw.send("GET", "/jobs/j/tasks/t")[1]), 120, "the task on the package's node")
    assert done["executionInfo"]["exitCode"] == 0, done
    status, stdout, _ = raw.send("GET", "/jobs/j/tasks/t/files/stdout.txt")
    assert status == 200
    lines = stdout.splitlines()
    assert lines[0] == "hello from tool" and lines[1].startswith("tool ran in ")
    assert lines[1].endswith("/workitems/j/job-1/t/wd")


def _stamp(text: str) -> float:
    import calendar
    import time

    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def download(batch_service, url: str) -> bytes:
    from azure.storage.blob import BlobClient

    return BlobClient.from_blob_url(url, connection_verify=batch_service.ca_path
                                    ).download_blob().readall()


def upload(batch_service, url: str, data: bytes) -> None:
    """PUT the zip to the storageUrl as a client would: the Blob SDK with the URL's SAS."""
    from azure.storage.blob import BlobClient

    BlobClient.from_blob_url(url, connection_verify=batch_service.ca_path).upload_blob(
        data, overwrite=True)


def test_activating_before_uploading_is_refused(arm):
    from azure.core.exceptions import HttpResponseError

    client, group, account = arm
    client.application_package.create(group, account, "empty", "1")
    with pytest.raises(HttpResponseError) as refused:
        client.application_package.activate(group, account, "empty", "1", {"format": "zip"})
    assert refused.value.status_code == 409
    assert refused.value.error.code == "ApplicationPackageBlobNotFound"


def test_the_spec_pool_resource_creates_the_pool_and_updates_what_azure_allows(
        arm, batch_service, tmp_path):
    from azure.core.exceptions import HttpResponseError

    client, group, account = arm
    prefix = batch_service.service.arm_prefix()
    archive = tmp_path / "examples.zip"
    with zipfile.ZipFile(str(archive), "w") as handle:
        handle.writestr("starttask.sh", "echo started\n")
    batch_service.add_package(archive, "examples", "1.0.0")
    resource = spec_pool(tmp_path, "pool.nodes=0")
    pool = client.pool.create(group, account, "examples", resolved(resource, prefix))
    assert (pool.name, pool.task_slots_per_node) == ("examples", 2)
    assert list(pool.identity.user_assigned_identities) == list(
        resource["identity"]["userAssignedIdentities"])
    raw = Raw(batch_service)
    plane = raw.send("GET", "/pools/examples")[1]
    assert plane["taskSchedulingPolicy"] == {"nodeFillType": "pack"}
    assert plane["applicationPackageReferences"] == [{"applicationId": "examples",
                                                      "version": "1.0.0"}]
    assert plane["startTask"]["commandLine"] == resource["properties"]["startTask"][
        "commandLine"]
    assert plane["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 22.04"
    assert plane["identity"]["type"] == "UserAssigned"

    again = resolved(spec_pool(tmp_path, "pool.nodes=0", "pool.spot_nodes=1"), prefix)
    updated = client.pool.create(group, account, "examples", again)
    assert updated.scale_settings.fixed_scale.target_low_priority_nodes == 1
    assert raw.send("GET", "/pools/examples")[1]["targetLowPriorityNodes"] == 1

    bigger = resolved(spec_pool(tmp_path, "pool.vm_size=Standard_D4a_v4"), prefix)
    with pytest.raises(HttpResponseError) as refused:
        client.pool.create(group, account, "examples", bigger)
    assert (refused.value.status_code, refused.value.error.code) == (
        400, "PropertyCannotBeUpdated")
    assert "'vmSize'" in refused.value.error.message
    template = {"identity": resource["identity"], "properties": resource["properties"]}
    with pytest.raises(HttpResponseError) as expression:
        client.pool.create(group, account, "other", template)
    assert expression.value.error.code == "LinkedInvalidPropertyId"
    client.pool.begin_delete(group, account, "examples").result()
    assert [p.name for p in client.pool.list_by_batch_account(group, account)] == []


def test_a_wrong_token_group_or_version_is_arms_error(arm, batch_service):
    import urllib3

    client, group, account = arm
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError) as missing:
        client.batch_account.get("other-rg", account)
    assert missing.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(HttpResponseError) as pool:
        client.pool.get(group, account, "nope")
    assert (pool.value.status_code, pool.value.error.code) == (404, "PoolNotFound")
    token, _ = batch_service.set.issuer.issue("x", "https://storage.azure.com/")
    http = urllib3.PoolManager(ca_certs=batch_service.ca_path)
    url = batch_service.arm_endpoint + batch_service.service.arm_prefix()
    answer = http.request("GET", url + "?api-version=2024-07-01",
                          headers={"Authorization": "Bearer " + token})
    assert answer.status == 401
    assert json.loads(answer.data)["error"]["code"] == "InvalidAuthenticationTokenAudience"
    good, _ = batch_service.set.issuer.issue("x", "https://management.azure.com/")
    answer = http.request("GET", url, headers={"Authorization": "Bearer " + good})
    assert json.loads(answer.data)["error"]["code"] == "MissingApiVersionParameter"
