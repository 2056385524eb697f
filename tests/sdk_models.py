"""The Azure SDKs' own models as validators of the deploy documents (test-only
dependencies of the dev extra): azure-batch 14.x for the data-plane job and tasks
(from_dict, validate(), serialize() back to the same JSON, since unknown keys are dropped
silently), azure-mgmt-batch for the pool resource of the ARM template."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest


def check_batch(model: str, document: Any) -> None:
    """A data-plane document as azure-batch 14.x sees it: valid, and nothing dropped."""
    batch_models = pytest.importorskip("azure.batch.models")
    instance = getattr(batch_models, model).from_dict(document)
    assert instance.validate() == [], (model, instance.validate())
    assert instance.serialize() == document


def check_pool(template: Dict[str, Any]) -> None:
    """The pool resource of the ARM template, with azure-mgmt-batch's Pool: every required
    field of every nested model set, and serialize() gives back the same JSON."""
    mgmt = pytest.importorskip("azure.mgmt.batch.models")
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
