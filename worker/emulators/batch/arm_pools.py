"""Pools as the account plane (ARM, ``Microsoft.Batch/batchAccounts/pools``) describes them,
translated to and from the data plane's: ``deploymentConfiguration.virtualMachineConfiguration``
(``nodeAgentSkuId``), ``scaleSettings`` (``fixedScale`` or ``autoScale``),
``applicationPackages`` (the application's ARM id), ``interNodeCommunication`` and the
resource's ``identity``, which the data plane cannot set (shared/BATCH.md 1.10).

A PUT on an existing pool updates it with what Azure lets a pool change (its scale settings,
start task, application packages, metadata, fill policy); a different VM size, image or slot
count is refused naming the property, as Batch's resource provider refuses it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from . import pools, schema
from .errors import BatchError
from .scaling import formula_error
from .wire import iso

if TYPE_CHECKING:
    from .arm import ArmCall

#: ARM pool properties and what the service does with them.
KNOWN = {"displayName", "vmSize", "deploymentConfiguration", "scaleSettings",
         "interNodeCommunication", "networkConfiguration", "taskSlotsPerNode",
         "taskSchedulingPolicy", "userAccounts", "metadata", "startTask", "certificates",
         "applicationPackages", "applicationLicenses", "mountConfiguration",
         "targetNodeCommunicationMode", "upgradePolicy", "resourceTags"}
IMMUTABLE = ("vmSize", "deploymentConfiguration", "taskSlotsPerNode", "networkConfiguration",
             "userAccounts", "mountConfiguration")


class ArmError(Exception):
    """An ARM error: ``{"error": {"code", "message", "target"}}`` under its status."""

    def __init__(self, status: int, code: str, message: str, target: Optional[str] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target


def to_data_plane(name: str, properties: Dict[str, Any]) -> Dict[str, Any]:
    """The data plane's pool body for an ARM pool's properties (checked like a data-plane
    add, so a bad value is named the same way)."""
    unknown = sorted(set(properties) - KNOWN - {"provisioningState"})
    if unknown:
        raise ArmError(400, "InvalidRequestContent", "The pool property '%s' is not one this "
                       "account knows." % unknown[0], "properties.%s" % unknown[0])
    body: Dict[str, Any] = {"id": name}
    for key in ("displayName", "vmSize", "taskSlotsPerNode", "metadata", "startTask",
                "networkConfiguration", "userAccounts", "mountConfiguration",
                "targetNodeCommunicationMode", "upgradePolicy", "resourceTags",
                "applicationLicenses"):
        if properties.get(key) is not None:
            body[key] = copy.deepcopy(properties[key])
    vm = (properties.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration")
    if vm is not None:
        vm = copy.deepcopy(vm)
        if "nodeAgentSkuId" in vm:
            vm["nodeAgentSKUId"] = vm.pop("nodeAgentSkuId")
        body["virtualMachineConfiguration"] = vm
    policy = properties.get("taskSchedulingPolicy")
    if policy:
        body["taskSchedulingPolicy"] = {"nodeFillType": str(policy.get("nodeFillType",
                                                                       "Spread")).lower()}
    if properties.get("interNodeCommunication") is not None:
        body["enableInterNodeCommunication"] = properties["interNodeCommunication"] == \
            "Enabled"
    refs = [{"applicationId": application_name(p.get("id", ""), n), "version": p.get("version")}
            for n, p in enumerate(properties.get("applicationPackages") or [])]
    if refs:
        body["applicationPackageReferences"] = [{k: v for k, v in r.items() if v is not None}
                                                for r in refs]
    body.update(_scale(properties.get("scaleSettings") or {}))
    try:
        return schema.check(body, schema.POOL)
    except BatchError as e:
        raise _from_batch(e) from None


def _scale(settings: Dict[str, Any]) -> Dict[str, Any]:
    auto, fixed = settings.get("autoScale"), settings.get("fixedScale")
    if auto:
        out = {"enableAutoScale": True, "autoScaleFormula": auto.get("formula")}
        if auto.get("evaluationInterval"):
            out["autoScaleEvaluationInterval"] = auto["evaluationInterval"]
        return out
    fixed = fixed or {}
    out = {"targetDedicatedNodes": int(fixed.get("targetDedicatedNodes") or 0),
           "targetLowPriorityNodes": int(fixed.get("targetLowPriorityNodes") or 0)}
    if fixed.get("resizeTimeout"):
        out["resizeTimeout"] = fixed["resizeTimeout"]
    return out


def application_name(arm_id: str, index: int = 0) -> str:
    """The application of an ``applicationPackages[].id``: its ARM id's last segment (a
    template's ``[resourceId(...)]`` is resolved by a deployment, never by this API)."""
    before, found, name = arm_id.rstrip("/").rpartition("/applications/")
    if not found or not name or arm_id.startswith("["):
        raise ArmError(400, "LinkedInvalidPropertyId", "applicationPackages[%d].id %r is not "
                       "an application's resource id (.../batchAccounts/ACCOUNT/applications/"
                       "APP): a template expression is resolved by a deployment "
                       "(az deployment group create), not by this API" % (index, arm_id),
                       "properties.applicationPackages[%d].id" % index)
    return name


def create_or_update(call: "ArmCall", name: str, document: Dict[str, Any]) -> Any:
    """PUT: a new pool, or the changes Azure allows to an existing one."""
    service = call.service
    properties = document.get("properties") or {}
    body = to_data_plane(name, properties)
    pool = service.pools.get(name.lower())
    if pool is None:
        if call.header("If-Match"):
            raise ArmError(412, "ConditionNotMet", "The pool does not exist.")
        try:
            pool = pools.create_pool(service, body, document.get("identity"))
        except BatchError as e:
            raise _from_batch(e) from None
    else:
        call.check_etag(arm_etag(pool))
        _apply_update(pool, body, properties, document.get("identity"))
    return to_arm(call, pool)


def patch(call: "ArmCall", name: str, document: Dict[str, Any]) -> Any:
    pool = call.service.pools.get(name.lower())
    if pool is None:
        raise call.not_found("pools", name)
    call.check_etag(arm_etag(pool))
    properties = document.get("properties") or {}
    merged = dict(_arm_properties(pool), **properties)
    body = to_data_plane(pool.id, merged)
    _apply_update(pool, body, properties, document.get("identity"))
    return to_arm(call, pool)


def _apply_update(pool: Any, body: Dict[str, Any], given: Dict[str, Any],
            identity: Optional[Dict[str, Any]]) -> None:
    for key in IMMUTABLE:
        wanted = body.get("virtualMachineConfiguration") if key == "deploymentConfiguration" \
            else body.get(key)
        have = pool.spec.get("virtualMachineConfiguration") if key == \
            "deploymentConfiguration" else pool.spec.get(key)
        if key in given and wanted != have and not (key == "taskSlotsPerNode" and
                                                   (wanted or 1) == (have or 1)):
            raise ArmError(400, "PropertyCannotBeUpdated", "The property '%s' of pool %s "
                           "cannot be changed: delete the pool and create it again, or give "
                           "it another name." % (key, pool.id), "properties.%s" % key)
    service = pool.service
    changes = {k: body.get(k) for k in ("startTask", "applicationPackageReferences",
                                        "metadata", "displayName", "taskSchedulingPolicy")
               if k in body or _arm_key(k) in given}
    try:
        pools.update_pool(service, pool, changes)
        if "scaleSettings" in given:
            _rescale(pool, body)
    except BatchError as e:
        raise _from_batch(e) from None
    if identity is not None:
        service.identities[pool.id.lower()] = identity


def _arm_key(data_plane_key: str) -> str:
    return {"applicationPackageReferences": "applicationPackages"}.get(data_plane_key,
                                                                        data_plane_key)


def _rescale(pool: Any, body: Dict[str, Any]) -> None:
    service = pool.service
    if body.get("enableAutoScale"):
        interval = pools.interval_seconds(body.get("autoScaleEvaluationInterval"))
        if pool.scaler is None or pool.scaler.text != body["autoScaleFormula"] or \
                pool.scaler.interval != interval:
            history = pool.scaler.history if pool.scaler else None
            pool.scaler = pools.new_scaler(service, pool, body["autoScaleFormula"], interval)
            if history is not None:
                pool.scaler.history = history
    else:
        pool.scaler = None
        pool.set_targets(body.get("targetDedicatedNodes", 0),
                         body.get("targetLowPriorityNodes", 0))
    pool.touch()
    service.wake()


def arm_etag(pool: Any) -> str:
    return 'W/"%s"' % pool.etag


def _arm_properties(pool: Any) -> Dict[str, Any]:
    """The ARM properties of a pool as it is (the base a PATCH changes)."""
    spec = pool.spec
    vm = copy.deepcopy(spec.get("virtualMachineConfiguration") or {})
    if "nodeAgentSKUId" in vm:
        vm["nodeAgentSkuId"] = vm.pop("nodeAgentSKUId")
    properties: Dict[str, Any] = {
        "vmSize": spec.get("vmSize"),
        "deploymentConfiguration": {"virtualMachineConfiguration": vm},
        "taskSlotsPerNode": pool.slots,
        "taskSchedulingPolicy": {"nodeFillType": pool.scheduler.fill.capitalize()},
        "interNodeCommunication": "Enabled" if spec.get("enableInterNodeCommunication")
        else "Disabled"}
    if pool.scaler is not None:
        properties["scaleSettings"] = {"autoScale": {
            "formula": pool.scaler.text,
            "evaluationInterval": pool.scaler.to_json()["autoScaleEvaluationInterval"]}}
    else:
        properties["scaleSettings"] = {"fixedScale": {
            "targetDedicatedNodes": pool.target_dedicated,
            "targetLowPriorityNodes": pool.target_low, "resizeTimeout": pool.resize_timeout}}
    for key in ("displayName", "startTask", "metadata", "networkConfiguration",
                "userAccounts", "mountConfiguration", "targetNodeCommunicationMode",
                "upgradePolicy", "resourceTags", "applicationLicenses"):
        if spec.get(key) is not None:
            properties[key] = copy.deepcopy(spec[key])
    refs = spec.get("applicationPackageReferences") or []
    if refs:
        properties["applicationPackages"] = [
            dict({"id": "%s/applications/%s" % (pool.service.arm_prefix(), r["applicationId"])},
                 **({"version": r["version"]} if r.get("version") else {})) for r in refs]
    return properties


def to_arm(call: "ArmCall", pool: Any) -> Dict[str, Any]:
    dedicated, low = pool.counts()
    properties = _arm_properties(pool)
    properties.update({
        "lastModified": iso(pool.changed), "creationTime": iso(pool.created),
        "provisioningState": "Succeeded", "provisioningStateTransitionTime": iso(pool.created),
        "allocationState": pool.allocation_state().capitalize(),
        "allocationStateTransitionTime": iso(pool.alloc_changed),
        "currentDedicatedNodes": dedicated, "currentLowPriorityNodes": low})
    if pool.resize_errors:
        properties["resizeOperationStatus"] = {
            "targetDedicatedNodes": pool.target_dedicated,
            "nodeDeallocationOption": pool.deallocation.capitalize(),
            "resizeTimeout": pool.resize_timeout, "startTime": iso(pool.alloc_changed),
            "errors": list(pool.resize_errors)}
    if pool.scaler is not None and pool.scaler.last_run is not None:
        properties["autoScaleRun"] = {"evaluationTime": pool.scaler.last_run["timestamp"],
                                      "results": pool.scaler.last_run["results"]}
        if "error" in pool.scaler.last_run:
            properties["autoScaleRun"]["error"] = pool.scaler.last_run["error"]
    document: Dict[str, Any] = {"id": "%s/pools/%s" % (call.prefix, pool.id), "name": pool.id,
                                "type": "Microsoft.Batch/batchAccounts/pools",
                                "etag": arm_etag(pool), "properties": properties}
    identity = call.service.pool_identity(pool.id)
    if identity:
        document["identity"] = identity
    return document


def _from_batch(error: BatchError) -> ArmError:
    """A data-plane refusal in ARM's words, naming the same property."""
    values = dict(error.values)
    name = values.get("PropertyName")
    detail = "; ".join("%s: %s" % pair for pair in error.values if pair[0] != "PropertyName")
    message = error.message + ("" if not name else " (property %s%s)" % (
        name, ": " + detail if detail else ""))
    if error.status == 409:
        return ArmError(409, error.code, message, name)
    if error.code.startswith("AutoScal"):
        return ArmError(400, error.code, message)
    return ArmError(error.status if error.status < 500 else 400, error.code, message,
                    "properties.%s" % name if name else None)


def formula_arm_error(error: Exception) -> ArmError:
    return _from_batch(formula_error(error))


def listing(call: "ArmCall") -> List[Dict[str, Any]]:
    return [to_arm(call, p) for p in sorted(call.service.pools.values(),
                                            key=lambda p: p.id.lower())]
