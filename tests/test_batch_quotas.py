"""The local Batch account's quotas, as Azure Batch enforces them: dedicated and spot cores
across the account's pools (a pool gets the nodes that fit, its resize ends steady with
Batch's resize error, and a new resize tries again) and the number of pools (409
``PoolQuotaReached`` on both planes); the account plane reports them."""

from __future__ import annotations

import pytest
from batch_raw import Raw
from support import wait_for
from test_batch_service import make, pool_body


@pytest.fixture
def raw(batch_service) -> Raw:
    return Raw(batch_service)


def settled(raw: Raw, pool_id: str):
    """The pool once its resize is over (its nodes allocated or refused)."""
    return wait_for(lambda: (lambda p: p["allocationState"] == "steady" and p)(
        raw.send("GET", "/pools/%s" % pool_id)[1]), what="pool %s to settle" % pool_id)


def test_a_pool_gets_the_nodes_the_core_quotas_leave_and_a_resize_error(raw, batch_service):
    batch_service.configure(dedicated_core_quota=5, low_priority_core_quota=0)
    make(raw, "/pools", pool_body("big", targetDedicatedNodes=3))  # 2 vCPUs a node
    big = settled(raw, "big")
    assert (big["currentDedicatedNodes"], big["targetDedicatedNodes"]) == (2, 3)
    assert big["resizeErrors"] == [{"code": "AccountCoreQuotaReached",
                                    "message": "The specified account has reached core "
                                               "quota"}]
    make(raw, "/pools", pool_body("spot", targetLowPriorityNodes=1))
    spot = settled(raw, "spot")
    assert spot["currentLowPriorityNodes"] == 0
    assert [e["code"] for e in spot["resizeErrors"]] == ["AccountLowPriorityCoreQuotaReached"]

    assert raw.send("POST", "/pools/big/resize", {"targetDedicatedNodes": 1})[0] == 202
    big = wait_for(lambda: (lambda p: p["currentDedicatedNodes"] == 1 and p)(
        raw.send("GET", "/pools/big")[1]), what="the shrink")
    assert "resizeErrors" not in big  # a new resize, without error
    batch_service.configure(dedicated_core_quota=6)
    assert raw.send("POST", "/pools/big/resize", {"targetDedicatedNodes": 3})[0] == 202
    big = wait_for(lambda: (lambda p: p["currentDedicatedNodes"] == 3 and p)(
        raw.send("GET", "/pools/big")[1]), what="the growth the new quota allows")
    assert settled(raw, "big").get("resizeErrors") is None


def test_a_pool_beyond_the_pool_quota_is_refused_on_both_planes(raw, batch_service,
                                                                  monkeypatch):
    from azure.core.exceptions import HttpResponseError

    batch_service.configure(pool_quota=1)
    make(raw, "/pools", pool_body("one"))
    status, document, _ = raw.send("POST", "/pools", pool_body("two"))
    assert (status, document["code"]) == (409, "PoolQuotaReached")
    assert document["message"]["value"].startswith("Pool quota for the account has been "
                                                   "reached.")
    env = batch_service.environment()
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST",
                       env["AZURE_POD_IDENTITY_AUTHORITY_HOST"])
    group, account = env["AZURE_RESOURCE_GROUP"], env["AZURE_BATCH_ACCOUNT"]
    client = batch_service.management_client(retry_total=0)
    found = client.batch_account.get(group, account)
    assert (found.pool_quota, found.dedicated_core_quota, found.low_priority_core_quota) == (
        1, 1000, 1000)
    with pytest.raises(HttpResponseError) as refused:
        client.pool.create(group, account, "two", {"properties": {
            "vmSize": "STANDARD_D2A_V4", "deploymentConfiguration": {
                "virtualMachineConfiguration": pool_body()["virtualMachineConfiguration"]}}})
    assert (refused.value.status_code, refused.value.error.code) == (409, "PoolQuotaReached")
    assert raw.send("DELETE", "/pools/one")[0] == 202
    make(raw, "/pools", pool_body("two"))
