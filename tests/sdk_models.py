"""The Azure SDKs' own models as validators of the deploy documents (test-only
dependencies of the dev extra): azure-batch 14.x for the data-plane job and tasks
(from_dict, validate(), serialize() back to the same JSON, since unknown keys are dropped
silently), azure-mgmt-batch for the pool resource of the ARM template."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest


def batch_models_14() -> Any:
    """azure-batch 14.x's models (the dev extra's on Python 3.8), else skip: 15.x has no
    validate(), from_dict() or serialize()."""
    batch_models = pytest.importorskip("azure.batch.models")
    if not hasattr(batch_models, "TaskAddParameter"):
        pytest.skip("validating with the SDK's models needs azure-batch 14.x (the dev lock's "
                    "on Python 3.8); this is a newer generation")
    return batch_models


def mgmt_models_msrest() -> Any:
    """azure-mgmt-batch's msrest models (< 19, the dev lock's on Python 3.8), else skip."""
    mgmt = pytest.importorskip("azure.mgmt.batch.models")
    if not hasattr(mgmt.Pool, "from_dict"):
        pytest.skip("validating with the SDK's models needs azure-mgmt-batch < 19 (the dev "
                    "lock's on Python 3.8); this is a newer generation")
    return mgmt


def check_batch(model: str, document: Any) -> None:
    """A data-plane document as azure-batch 14.x sees it: valid, and nothing dropped."""
    batch_models = batch_models_14()
    instance = getattr(batch_models, model).from_dict(document)
    assert instance.validate() == [], (model, instance.validate())
    assert instance.serialize() == document


def check_pool(template: Dict[str, Any]) -> None:
    """The pool resource of the ARM template, with azure-mgmt-batch's Pool: every required
    field of every nested model set, and serialize() gives back the same JSON."""
    mgmt = mgmt_models_msrest()
    (resource,) = template["resources"]
    assert resource["type"] == "Microsoft.Batch/batchAccounts/pools"
    body = {k: resource[k] for k in ("identity", "properties")}
    pool = mgmt.Pool.from_dict(body)
    assert missing_required(pool) == []
    assert pool.serialize() == body


def missing_required(model: Any, where: str = "pool") -> List[str]:
    missing = []
    for attr in model._attribute_map:
        value = getattr(model, attr, None)
        rules = model._validation.get(attr, {})
        if value is None and rules.get("required") and not rules.get("readonly"):
            missing.append("%s.%s" % (where, attr))
        for n, item in enumerate(value if isinstance(value, list) else [value]):
            if hasattr(item, "_attribute_map"):
                missing += missing_required(item, "%s.%s[%d]" % (where, attr, n))
    return missing
