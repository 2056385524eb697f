"""The local Batch service's REST surface, through requests signed by the installed
azure-batch's own Shared Key code (15.x on 3.12, 14.2 on 3.8) and bearer tokens from the
emulated identity endpoint: authentication, API versions, the bodies Batch refuses (400
naming the property), unknown resources (404), conflicts (409), listings with $filter,
$select and pages, and the operations on pools, jobs and tasks.

What the nodes do with the tasks (slots, retries, dependencies, preemption, the start task)
is tests/test_batch_nodes.py; the SDKs' own workflows tests/test_batch_sdk*.py.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pytest
from batch_raw import Raw, error_of
from support import wait_for

BASH = "/bin/bash -c %s"
IMAGE = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
         "sku": "22_04-lts", "version": "latest"}


def pool_body(pool_id: str = "pool1", **extra: Any) -> Dict[str, Any]:
    return dict({"id": pool_id, "vmSize": "standard_d2a_v4",
                 "virtualMachineConfiguration": {"imageReference": IMAGE,
                                                 "nodeAgentSKUId": "batch.node.ubuntu 22.04"},
                 "targetDedicatedNodes": 0}, **extra)


@pytest.fixture
def raw(batch_service) -> Raw:
    return Raw(batch_service)


def make(raw: Raw, path: str, body: Dict[str, Any]) -> None:
    status, document, _ = raw.send("POST", path, body)
    assert status == 201, document


# -- authentication ---------------------------------------------------------------------------

def test_a_wrong_key_is_refused_with_batchs_authentication_error(batch_service):
    import base64

    wrong = Raw(batch_service, key=base64.b64encode(b"x" * 64).decode())
    status, document, headers = wrong.send("GET", "/pools")
    assert status == 403
    code, values = error_of(document)
    assert code == "AuthenticationFailed"
    assert "MAC signature found in the HTTP request" in values["AuthenticationErrorDetail"]
    assert document["message"]["value"].startswith(
        "Server failed to authenticate the request.")
    assert "\nRequestId:%s\n" % headers["request-id"] in document["message"]["value"]


def _bearer(batch_service, token: str):
    import urllib3

    http = urllib3.PoolManager(ca_certs=batch_service.ca_path)
    return http.request("GET", batch_service.endpoint + "/jobs?api-version=2025-06-01",
                        headers={"Authorization": "Bearer %s" % token})


def test_an_entra_token_for_batch_from_the_identity_endpoint_is_accepted(
        batch_service, monkeypatch):
    """ManagedIdentityCredential against the emulated IMDS: a token for Batch's audience
    lists the jobs; one for storage is refused with the audience named."""
    import json

    from azure.identity import ManagedIdentityCredential

    env = batch_service.environment()
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST",
                       env["AZURE_POD_IDENTITY_AUTHORITY_HOST"])
    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])
    good = _bearer(batch_service,
                   credential.get_token("https://batch.core.windows.net//.default").token)
    assert good.status == 200, good.data
    assert json.loads(good.data)["value"] == []
    other = _bearer(batch_service, credential.get_token("https://storage.azure.com/.default")
                    .token)
    assert other.status == 401
    code, values = error_of(json.loads(other.data))
    assert code == "AuthenticationFailed"
    assert values["AuthenticationErrorDetail"] == (
        "The access token has been obtained from wrong audience or resource "
        "'https://storage.azure.com'. It should exactly match (including forward slash) "
        "with one of the allowed audiences 'https://batch.core.windows.net/'")


def test_an_expired_or_forged_token_is_refused(batch_service):
    import json

    issuer = batch_service.set.issuer
    expired, _ = issuer.issue("someone", "https://batch.core.windows.net/", lifetime=-60,
                              not_before=int(time.time()) - 600)
    answer = _bearer(batch_service, expired)
    assert answer.status == 401
    assert error_of(json.loads(answer.data))[1]["AuthenticationErrorDetail"] == (
        "Lifetime validation failed. The token is expired.")
    head, body, _ = expired.split(".")
    forged = _bearer(batch_service, "%s.%s.%s" % (head, body, "A" * 43))
    assert forged.status == 401
    assert "Signature validation failed" in json.loads(forged.data)["values"][0]["value"]
    missing = _bearer(batch_service, "")
    assert missing.status == 401


# -- API versions, URIs, verbs ------------------------------------------------------------------

def test_the_api_version_is_required_and_must_be_one_batch_knows(raw):
    status, document, _ = raw.send("GET", "/pools", version=None)
    assert (status, document["code"]) == (400, "MissingRequiredQueryParameter")
    status, document, _ = raw.send("GET", "/pools", version="2015-01-01.1.0")
    assert (status, document["code"]) == (400, "UnsupportedRequestVersion")
    for version in ("2024-02-01.19.0", "2025-06-01"):
        assert raw.send("GET", "/pools", version=version)[0] == 200


def test_unknown_resources_are_404_and_unknown_paths_400(raw):
    assert error_of(raw.send("GET", "/jobs/nope")[1])[0] == "JobNotFound"
    assert raw.send("GET", "/jobs/nope")[0] == 404
    assert raw.send("GET", "/pools/nope")[1]["code"] == "PoolNotFound"
    assert raw.send("HEAD", "/pools/nope")[0] == 404
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "nopool"}})
    assert raw.send("GET", "/jobs/j/tasks/t")[1]["code"] == "TaskNotFound"
    assert raw.send("GET", "/jobs/j/tasks/t/files/stdout.txt")[1]["code"] == "TaskNotFound"
    make(raw, "/pools", pool_body())
    assert raw.send("GET", "/pools/pool1/nodes/tvm_x")[1]["code"] == "NodeNotFound"
    assert raw.send("GET", "/applications/nope")[1]["code"] == "ApplicationNotFound"
    status, document, _ = raw.send("GET", "/jobschedules")
    assert (status, document["code"]) == (400, "InvalidUri")
    status, document, _ = raw.send("PUT", "/pools")
    assert (status, document["code"]) == (405, "UnsupportedHttpVerb")


# -- bodies Batch refuses ---------------------------------------------------------------------------

@pytest.mark.parametrize("body, code, name", [
    ({"id": "t1", "commandLine": "true", "colour": "red"}, "UnsupportedProperty", "colour"),
    ({"id": "t1", "commandLine": "true", "constraints": {"maxTaskRetryCount": 1,
                                                         "maxRetries": 2}},
     "UnsupportedProperty", "constraints.maxRetries"),
    ({"id": "t1"}, "MissingRequiredProperty", "commandLine"),
    ({"id": "t 1", "commandLine": "true"}, "InvalidPropertyValue", "id"),
    ({"id": "t1", "commandLine": "true", "requiredSlots": 0}, "InvalidPropertyValue",
     "requiredSlots"),
    ({"id": "t1", "commandLine": "true", "constraints": {"maxWallClockTime": "10 minutes"}},
     "InvalidPropertyValue", "constraints.maxWallClockTime"),
    ({"id": "t1", "commandLine": "true", "exitConditions": {"exitCodes": [
        {"code": 2, "exitOptions": {"jobAction": "explode"}}]}},
     "InvalidPropertyValue", "exitConditions.exitCodes[0].exitOptions.jobAction"),
    ({"id": "t1", "commandLine": "true", "resourceFiles": [{"httpUrl": "https://x/y"}]},
     "UnsupportedProperty", "resourceFiles"),
    ({"id": "t1", "commandLine": "echo 'unbalanced"}, "InvalidPropertyValue", "commandLine"),
])
def test_a_task_body_batch_would_refuse_is_a_400_naming_the_property(raw, body, code, name):
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "p"}})
    status, document, _ = raw.send("POST", "/jobs/j/tasks", body)
    assert status == 400, document
    got, values = error_of(document)
    assert (got, values["PropertyName"]) == (code, name)


def test_the_other_bodies_are_checked_too(raw):
    status, document, _ = raw.send("POST", "/pools", pool_body(taskSlotsPerNode=300))
    assert (status, error_of(document)[1]["PropertyName"]) == (400, "taskSlotsPerNode")
    status, document, _ = raw.send("POST", "/pools", pool_body(
        virtualMachineConfiguration={"imageReference": IMAGE}))
    assert error_of(document) == ("MissingRequiredProperty", {
        "PropertyName": "virtualMachineConfiguration.nodeAgentSKUId"})
    status, document, _ = raw.send("POST", "/jobs", {"id": "j", "poolInfo": {"poolId": "p"},
                                                     "jobManagerTask": {"id": "m",
                                                                        "commandLine": "x"}})
    code, values = error_of(document)
    assert (status, code, values["PropertyName"]) == (400, "UnsupportedProperty",
                                                      "jobManagerTask")
    assert "does not run this" in values["Reason"]
    status, document, _ = raw.send("POST", "/jobs", raw_body=b"{not json")
    assert (status, document["code"]) == (400, "InvalidRequestBody")
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "p"}})
    status, document, _ = raw.send("POST", "/jobs/j/disable", {"disableTasks": "later"})
    assert error_of(document)[1]["PropertyName"] == "disableTasks"
    status, document, _ = raw.send("POST", "/jobs/j/tasks",
                                   {"id": "t", "commandLine": "true",
                                    "dependsOn": {"taskIds": ["a"]}})
    assert (status, document["code"]) == (400, "TaskDependenciesNotSpecifiedOnJob")


def test_conflicts_are_409_with_batchs_codes(raw):
    make(raw, "/pools", pool_body())
    assert raw.send("POST", "/pools", pool_body(id="POOL1"))[1]["code"] == "PoolExists"
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "pool1"}})
    status, document, _ = raw.send("POST", "/jobs", {"id": "J", "poolInfo": {"poolId": "x"}})
    assert (status, document["code"]) == (409, "JobExists")
    make(raw, "/jobs/j/tasks", {"id": "t", "commandLine": "true"})
    status, document, _ = raw.send("POST", "/jobs/j/tasks", {"id": "T", "commandLine": "x"})
    assert (status, document["code"]) == (409, "TaskExists")
    assert raw.send("POST", "/jobs/j/tasks/t/reactivate")[1]["code"] == "TaskNotCompleted"
    status, document, _ = raw.send("POST", "/jobs/j/tasks", {
        "id": "u", "commandLine": "true",
        "applicationPackageReferences": [{"applicationId": "nope", "version": "1"}]})
    assert (status, document["code"]) == (409, "InvalidApplicationPackageReferences")
    assert raw.send("POST", "/jobs/j/terminate")[0] == 202
    status, document, _ = raw.send("POST", "/jobs/j/tasks", {"id": "v", "commandLine": "x"})
    assert (status, document["code"]) == (409, "JobCompleted")


# -- collections and listings ---------------------------------------------------------------------

def test_a_collection_answers_for_each_task(raw):
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "p"}})
    make(raw, "/jobs/j/tasks", {"id": "b", "commandLine": "true"})
    status, document, _ = raw.send("POST", "/jobs/j/addtaskcollection", {"value": [
        {"id": "a", "commandLine": "true"}, {"id": "b", "commandLine": "true"}]})
    assert status == 200
    a, b = document["value"]
    assert (a["status"], a["taskId"]) == ("success", "a")
    assert a["location"].endswith("/jobs/j/tasks/a") and a["eTag"].startswith("0x8D")
    assert (b["status"], b["taskId"], b["error"]["code"]) == ("clienterror", "b", "TaskExists")
    too_many = {"value": [{"id": "t%d" % i, "commandLine": "true"} for i in range(101)]}
    status, document, _ = raw.send("POST", "/jobs/j/addtaskcollection", too_many)
    assert (status, error_of(document)[1]["PropertyName"]) == (400, "value")


def test_fault_rules_name_the_batch_planes_and_the_fixtures_reset_clears_them(
        raw, batch_service):
    """``batch`` and ``arm`` are fault services (a --faults file's rules too); a rule of kind
    ``item`` answers a collection's task with a serverError inside the 200."""
    from worker.emulators.faults import add_rules

    faults = batch_service.set.faults
    add_rules(faults, [{"service": "batch", "operation": "pool.list", "status": 503,
                        "times": None}, {"service": "arm", "operation": "pool.get"}])
    status, document, _ = raw.send("GET", "/pools")
    assert (status, document["code"]) == (503, "ServerBusy")
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "p"}})
    faults.add("batch", "task.addcollection", "item", status=503, times=1)
    status, document, _ = raw.send("POST", "/jobs/j/addtaskcollection", {"value": [
        {"id": "a", "commandLine": "true"}, {"id": "b", "commandLine": "true"}]})
    a, b = document["value"]
    assert (status, a["status"], a["error"]["code"], b["status"]) == (
        200, "servererror", "ServerBusy", "success")
    assert raw.send("GET", "/jobs/j/tasks/a")[0] == 404  # not added
    batch_service.reset()
    assert raw.send("GET", "/pools")[0] == 200


def test_listings_filter_select_and_page(raw):
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "p"}})
    raw.send("POST", "/jobs/j/addtaskcollection", {"value": [
        {"id": "t%02d" % i, "commandLine": "true", "displayName": "n%d" % (i % 3)}
        for i in range(25)]})
    pages: List[List[Dict[str, Any]]] = []
    status, document, _ = raw.send("GET", "/jobs/j/tasks", params={
        "maxresults": "10", "$filter": "state eq 'active' and (id lt 't10' or id ge 't20')",
        "$select": "id,state"})
    assert status == 200
    pages.append(document["value"])
    while "odata.nextLink" in document:
        path, _, query = document["odata.nextLink"][len(raw.handle.endpoint):].partition("?")
        from urllib.parse import parse_qsl

        params = dict(parse_qsl(query))
        params.pop("api-version")
        status, document, _ = raw.send("GET", path, params=params)
        pages.append(document["value"])
    assert [len(p) for p in pages] == [10, 5]
    ids = [t["id"] for page in pages for t in page]
    assert ids == ["t%02d" % i for i in range(25) if not 10 <= i < 20]
    assert set(pages[0][0]) == {"id", "state"}
    status, document, _ = raw.send("GET", "/jobs/j/tasks", params={
        "$filter": "startswith(id, 't1') or id eq 'T22'"})
    assert [t["id"] for t in document["value"]] == ["t1%d" % i for i in range(10)] + ["t22"]
    status, document, _ = raw.send("GET", "/jobs/j/tasks", params={"$filter": "state eq"})
    assert error_of(document)[0:1] == ("InvalidQueryParameterValue",)
    assert error_of(document)[1]["QueryParameterName"] == "$filter"


@pytest.mark.parametrize("path, refused", [
    ("/jobs/j/tasks", "executionInfo/requeueCount gt 0"),  # not among a task's filters
    ("/jobs/j/tasks", "displayName eq 'n0'"),
    ("/jobs/j/tasks", "state ne 'active'"),  # state: eq only
    ("/jobs", "onAllTasksComplete eq 'noaction'"),
    ("/pools", "targetDedicatedNodes gt 0"),
])
def test_a_list_filters_only_on_what_batch_filters_it_on(raw, path, refused):
    """"OData filters in Azure Batch" lists each list's properties and operators; Batch
    refuses the others (the deploy loop cannot count requeued tasks with a filter)."""
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "p"}})
    status, document, _ = raw.send("GET", path, params={"$filter": refused})
    code, values = error_of(document)
    assert (status, code, values["QueryParameterName"]) == (
        400, "InvalidQueryParameterValue", "$filter")
    accepted = {"/jobs/j/tasks": "executionInfo/exitCode ne 0 and executionInfo/result eq "
                "'failure'", "/jobs": "executionInfo/poolId eq 'p'",
                "/pools": "allocationState eq 'steady'"}[path]
    assert raw.send("GET", path, params={"$filter": accepted})[0] == 200


# -- jobs -----------------------------------------------------------------------------------------

def test_a_job_is_answered_with_batchs_defaults_and_its_state(raw):
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "p"}, "priority": 5})
    status, job, headers = raw.send("GET", "/jobs/j")
    assert status == 200
    assert (job["state"], job["priority"], job["onAllTasksComplete"], job["onTaskFailure"]) \
        == ("active", 5, "noaction", "noaction")
    assert job["constraints"] == {"maxWallClockTime": "P10675199DT2H48M5.4775807S",
                                  "maxTaskRetryCount": 0}
    assert headers["etag"] == job["eTag"]
    status, _, _ = raw.send("GET", "/jobs/j", headers={"If-None-Match": job["eTag"]})
    assert status == 304
    assert raw.send("PATCH", "/jobs/j", {"priority": 7},
                    headers={"If-Match": "0x8D0000000000000"})[0] == 412
    assert raw.send("PATCH", "/jobs/j", {"priority": 7})[0] == 200
    assert raw.send("GET", "/jobs/j")[1]["priority"] == 7
    assert raw.send("POST", "/jobs/j/disable", {"disableTasks": "requeue"})[0] == 202
    job = raw.send("GET", "/jobs/j")[1]
    assert (job["state"], job["previousState"]) == ("disabled", "active")
    assert raw.send("POST", "/jobs/j/disable", {"disableTasks": "wait"})[1]["code"] == \
        "JobNotActive"
    assert raw.send("POST", "/jobs/j/enable")[0] == 202
    assert raw.send("POST", "/jobs/j/terminate", {"terminateReason": "enough"})[0] == 202
    job = raw.send("GET", "/jobs/j")[1]
    assert (job["state"], job["executionInfo"]["terminateReason"]) == ("completed", "enough")
    assert "endTime" in job["executionInfo"]
    assert raw.send("DELETE", "/jobs/j")[0] == 202
    assert raw.send("GET", "/jobs/j")[0] == 404


def test_on_all_tasks_complete_terminates_the_job_when_its_last_task_completes(raw):
    make(raw, "/pools", pool_body(targetDedicatedNodes=1))
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "pool1"},
                        "onAllTasksComplete": "terminatejob"})
    time.sleep(0.5)  # a job with no tasks yet is not complete: it waits for them
    assert raw.send("GET", "/jobs/j")[1]["state"] == "active"
    raw.send("POST", "/jobs/j/addtaskcollection", {"value": [
        {"id": "1", "commandLine": "true"}, {"id": "2", "commandLine": BASH % "'exit 3'"}]})
    job = wait_for(lambda: (lambda j: j["state"] == "completed" and j)(
        raw.send("GET", "/jobs/j")[1]), what="the job to complete")
    assert job["executionInfo"]["terminateReason"] == "AllTasksComplete"
    status, counts, _ = raw.send("GET", "/jobs/j/taskcounts")
    assert counts["taskCounts"] == {"active": 0, "running": 0, "completed": 2, "succeeded": 1,
                                    "failed": 1}
    assert raw.send("PATCH", "/jobs/j", {"onAllTasksComplete": "noaction"})[1]["code"] == \
        "JobCompleted"


# -- pools ----------------------------------------------------------------------------------------

def test_a_pool_grows_and_shrinks_to_its_targets(raw):
    make(raw, "/pools", pool_body(targetDedicatedNodes=2, targetLowPriorityNodes=1,
                                  taskSlotsPerNode=3))
    pool = raw.send("GET", "/pools/pool1")[1]
    assert (pool["taskSlotsPerNode"], pool["enableAutoScale"]) == (3, False)
    wait_for(lambda: (lambda p: (p["currentDedicatedNodes"], p["currentLowPriorityNodes"]) ==
                      (2, 1))(raw.send("GET", "/pools/pool1")[1]), what="the nodes allocated")
    nodes = wait_for(lambda: (lambda n: all(x["state"] == "idle" for x in n) and n)(
        raw.send("GET", "/pools/pool1/nodes")[1]["value"]), what="idle nodes")
    assert sorted(n["isDedicated"] for n in nodes) == [False, True, True]
    assert all(n["id"].endswith("_p" if not n["isDedicated"] else "_d") for n in nodes)
    assert raw.send("POST", "/pools/pool1/resize", {"targetDedicatedNodes": 1,
                                                    "targetLowPriorityNodes": 0})[0] == 202
    pool = wait_for(lambda: (lambda p: p["allocationState"] == "steady" and p)(
        raw.send("GET", "/pools/pool1")[1]), what="a steady pool")
    assert (pool["currentDedicatedNodes"], pool["currentLowPriorityNodes"]) == (1, 0)
    node = raw.send("GET", "/pools/pool1/nodes")[1]["value"][0]["id"]
    assert raw.send("POST", "/pools/pool1/removenodes", {"nodeList": [node]})[0] == 202
    assert raw.send("GET", "/pools/pool1")[1]["targetDedicatedNodes"] == 0
    assert raw.send("GET", "/pools/pool1/nodes")[1]["value"] == []
    assert raw.send("HEAD", "/pools/pool1")[0] == 200
    assert raw.send("DELETE", "/pools/pool1")[0] == 202
    assert raw.send("GET", "/pools/pool1")[0] == 404


def test_autoscale_is_enabled_evaluated_and_applied(raw):
    make(raw, "/pools", pool_body(targetDedicatedNodes=None, enableAutoScale=True,
                                  autoScaleFormula="$TargetDedicatedNodes = 1;",
                                  autoScaleEvaluationInterval="PT5M"))
    pool = wait_for(lambda: (lambda p: p["currentDedicatedNodes"] == 1 and p)(
        raw.send("GET", "/pools/pool1")[1]), what="the formula's node")
    assert pool["enableAutoScale"] is True
    assert pool["autoScaleEvaluationInterval"] == "PT5M"
    assert "$TargetDedicatedNodes=1" in pool["autoScaleRun"]["results"]
    status, run, _ = raw.send("POST", "/pools/pool1/evaluateautoscale",
                              {"autoScaleFormula": "$TargetDedicatedNodes = 3;"})
    assert status == 200 and "$TargetDedicatedNodes=3" in run["results"]
    assert raw.send("GET", "/pools/pool1")[1]["targetDedicatedNodes"] == 1  # not applied
    status, document, _ = raw.send("POST", "/pools/pool1/evaluateautoscale",
                                   {"autoScaleFormula": "$TargetDedicatedNodes = = 3;"})
    assert (status, document["code"]) == (400, "AutoScalingFormulaSyntaxError")
    status, document, _ = raw.send("POST", "/pools/pool1/resize", {"targetDedicatedNodes": 2})
    assert status == 409
    status, document, _ = raw.send("POST", "/pools/pool1/enableautoscale",
                                   {"autoScaleEvaluationInterval": "PT1M"})
    assert error_of(document)[1]["PropertyName"] == "autoScaleEvaluationInterval"
    assert raw.send("POST", "/pools/pool1/disableautoscale")[0] == 200
    assert raw.send("POST", "/pools/pool1/resize", {"targetDedicatedNodes": 0})[0] == 202


def test_applications_are_listed_from_the_packages_the_account_has(raw, batch_service,
                                                                    tmp_path):
    import zipfile

    archive = tmp_path / "tool.zip"
    with zipfile.ZipFile(str(archive), "w") as handle:
        handle.writestr("run.sh", "echo tool\n")
    batch_service.add_package(archive, "tool", "1.0")
    document = raw.send("GET", "/applications")[1]
    assert document["value"] == [{"id": "tool", "displayName": "tool", "versions": ["1.0"]}]
    assert raw.send("GET", "/applications/TOOL")[1]["versions"] == ["1.0"]
