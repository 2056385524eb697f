"""The local Batch account's role assignments, as Azure RBAC checks Entra tokens: on the data
plane with tokens from the emulated identity endpoint (403 ``AuthorizationFailure``), on the
account plane through azure-mgmt-batch (403 ``AuthorizationFailed`` naming the client, the
action and the scope); Azure's built-in roles as their definitions grant; the account key
unaffected; the configuration naming each identity's roles (``--config``)."""

from __future__ import annotations

import json

import pytest
from batch_raw import Raw

from worker.emulators.config import DEFAULT_CLIENT_ID, READER_CLIENT_ID

BATCH = "https://batch.core.windows.net/"


@pytest.fixture
def ask(batch_service):
    """``ask(client_id, method, path, body=None) -> (status, json)`` with that identity's
    Batch token (real HTTPS to the data plane)."""
    import urllib3

    http = urllib3.PoolManager(ca_certs=batch_service.ca_path)

    def send(client_id, method, path, body=None):
        token, _ = batch_service.set.issuer.issue(client_id, BATCH)
        headers = {"Authorization": "Bearer " + token}
        if body is not None:
            headers["Content-Type"] = "application/json; odata=minimalmetadata"
        answer = http.request(method, "%s%s?api-version=2025-06-01" % (
            batch_service.endpoint, path), headers=headers,
            body=json.dumps(body).encode() if body is not None else None)
        return answer.status, json.loads(answer.data) if answer.data else None
    return send


def pool(pool_id="p"):
    return {"id": pool_id, "vmSize": "standard_d2a_v4", "targetDedicatedNodes": 0,
            "virtualMachineConfiguration": {"imageReference": {
                "publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}}


def test_each_role_allows_what_its_definition_grants_on_the_data_plane(ask, batch_service):
    job = {"id": "j", "poolInfo": {"poolId": "p"}}
    batch_service.assign_roles(READER_CLIENT_ID)  # no role at all
    status, document = ask(READER_CLIENT_ID, "GET", "/jobs")
    assert (status, document["code"]) == (403, "AuthorizationFailure")
    assert document["message"]["value"].startswith(
        "This request is not authorized to perform this operation.\nRequestId:")

    batch_service.assign_roles(READER_CLIENT_ID, "Contributor")  # actions, no data actions
    assert ask(READER_CLIENT_ID, "POST", "/pools", pool())[0] == 201
    assert ask(READER_CLIENT_ID, "POST", "/jobs", job)[0] == 403

    batch_service.assign_roles(READER_CLIENT_ID, "Azure Batch Job Submitter")
    assert ask(READER_CLIENT_ID, "POST", "/jobs", job)[0] == 201
    assert ask(READER_CLIENT_ID, "GET", "/pools/p")[0] == 200
    assert ask(READER_CLIENT_ID, "POST", "/pools", pool("q"))[0] == 403
    assert ask(READER_CLIENT_ID, "DELETE", "/pools/p")[0] == 403

    batch_service.assign_roles(READER_CLIENT_ID, "Azure Batch Account Reader")
    assert ask(READER_CLIENT_ID, "GET", "/jobs/j/tasks")[0] == 200
    assert ask(READER_CLIENT_ID, "POST", "/jobs/j/tasks", {"id": "t",
                                                           "commandLine": "true"})[0] == 403

    batch_service.assign_roles(READER_CLIENT_ID, "Azure Batch Data Contributor")
    assert ask(READER_CLIENT_ID, "POST", "/jobs/j/tasks", {"id": "t",
                                                           "commandLine": "true"})[0] == 201
    assert ask(READER_CLIENT_ID, "DELETE", "/pools/p")[0] == 202
    # the default: an identity the configuration says nothing of may do everything
    assert ask("somebody-else", "DELETE", "/jobs/j")[0] == 202


def test_the_account_key_may_do_anything_whatever_the_roles(batch_service):
    batch_service.assign_roles(DEFAULT_CLIENT_ID)
    status, document, _ = Raw(batch_service).send("POST", "/jobs", {
        "id": "j", "poolInfo": {"poolId": "p"}})
    assert status == 201, document


def test_the_account_plane_refuses_with_arms_authorization_failed(batch_service, monkeypatch):
    from azure.core.exceptions import HttpResponseError

    env = batch_service.environment()
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST",
                       env["AZURE_POD_IDENTITY_AUTHORITY_HOST"])
    group, account = env["AZURE_RESOURCE_GROUP"], env["AZURE_BATCH_ACCOUNT"]
    client = batch_service.management_client(READER_CLIENT_ID, retry_total=0)
    batch_service.assign_roles(READER_CLIENT_ID, "Reader")
    assert client.batch_account.get(group, account).name == account
    with pytest.raises(HttpResponseError) as refused:
        client.application.create(group, account, "tool", {})
    error = refused.value.error
    assert (refused.value.status_code, error.code) == (403, "AuthorizationFailed")
    scope = batch_service.service.arm_prefix() + "/applications/tool"
    assert error.message == (
        "The client '%s' with object id '%s' does not have authorization to perform action "
        "'Microsoft.Batch/batchAccounts/applications/write' over scope '%s' or the scope is "
        "invalid. If access was recently granted, please refresh your credentials."
        % (READER_CLIENT_ID, READER_CLIENT_ID, scope))
    with pytest.raises(HttpResponseError) as keys:
        client.batch_account.get_keys(group, account)
    assert "'Microsoft.Batch/batchAccounts/listKeys/action'" in keys.value.error.message
    batch_service.assign_roles(READER_CLIENT_ID, "Azure Batch Data Contributor")
    client.application.create(group, account, "tool", {})
    with pytest.raises(HttpResponseError):  # not Account Contributor: no keys
        client.batch_account.get_keys(group, account)


def test_the_configuration_names_each_identitys_roles(tmp_path):
    from worker.emulators import EmulatorSet
    from worker.emulators.batch.handle import BatchHandle
    from worker.emulators.batch.hosting import BatchHost
    from worker.emulators.batch.service import BatchSettings
    from worker.emulators.config import ConfigError, parse_config

    config = parse_config({"identities": [
        {"client_id": "a", "batch": ["Azure Batch Job Submitter"]}, {"client_id": "b"}]})
    assert [i.batch_roles for i in config.identities] == [("Azure Batch Job Submitter",), None]
    with pytest.raises(ConfigError) as wrong:
        parse_config({"identities": [{"client_id": "a", "batch": ["Batch Contributor"]}]})
    assert str(wrong.value).startswith(
        "an identity's batch names the role 'Batch Contributor', which the local Batch "
        "account does not know; its roles are Owner, Contributor, Reader, ")
    host = BatchHost(BatchSettings(), preferred_port=0, preferred_arm_port=0)
    with EmulatorSet(config, batch=host) as emulators:
        roles = BatchHandle(emulators).service.roles
        assert roles.roles_of("A") == ("Azure Batch Job Submitter",)
        assert roles.roles_of("b") == ("Azure Batch Account Contributor",)
