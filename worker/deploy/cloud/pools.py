"""The pool, created or updated through the account plane (ARM: the data plane cannot give a
pool its user-assigned identity, BATCH.md 1.10) from ``spec pool``'s resource.

A pool that does not exist is created (``If-None-Match: *``, so a create whose answer was
lost and is sent again cannot replace what another deploy made). An existing pool is
compared key by key: Azure changes ``startTask``, ``applicationPackages`` and
``scaleSettings`` on a pool with nodes (the first two reach a node when it reboots or is
reimaged), so those are updated (PATCH), except a package version new to a pool that has
nodes: its tasks would fail on them, so that is refused with the fix; any other difference
(``vmSize``, the image, ``taskSlotsPerNode``, ``taskSchedulingPolicy``, the identity) is a
clear error naming the key: Azure takes those only at creation or on a pool with no nodes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..errors import ConflictError
from .account import Clients
from .failures import translate
from .tasks import seconds_of

UPDATABLE = ("startTask", "applicationPackages", "scaleSettings")
FIXED = ("vmSize", "deploymentConfiguration", "taskSlotsPerNode", "taskSchedulingPolicy",
         "identity")
_FIXES = {
    "vmSize": "[pool] vm_size", "taskSlotsPerNode": "[pool] task_slots",
    "taskSchedulingPolicy": "[pool] fill", "identity": "[pool] identity",
    "deploymentConfiguration": "the image (Ubuntu 22.04)",
}


def application_id(clients: Clients, app: str) -> str:
    t = clients.target
    return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Batch/batchAccounts/%s/"
            "applications/%s" % (t.subscription, t.resource_group, t.account, app))


def pool_body(template: Dict[str, Any], clients: Clients, app: str) -> Tuple[str, Dict[str, Any]]:
    """(pool id, the body of ARM's Pool - Create) from ``spec pool``'s template: its one
    resource, with the template expression of the application's id resolved."""
    resource = template["resources"][0]
    pool_id = resource["name"].split("/", 1)[1]
    properties = dict(resource["properties"])
    properties["applicationPackages"] = [
        dict(ref, id=application_id(clients, app)) for ref in properties["applicationPackages"]]
    return pool_id, {"identity": resource["identity"], "properties": properties}


def ensure_pool(clients: Clients, pool_id: str, body: Dict[str, Any],
                dry_run: bool = False) -> str:
    """Create or update the pool; what was done, in a few words."""
    t = clients.target
    existing = _get(clients, pool_id)
    if existing is None:
        if not dry_run:
            _create(clients, pool_id, body)
        return "created" if not dry_run else "would create it"
    changes = compare(body, existing)
    fixed = [key for key in changes if key in FIXED]
    if fixed:
        key = fixed[0]
        raise ConflictError(
            "pool %s exists in account %s with another %s (%s there, %s in the spec): Azure "
            "changes it only when a pool is created or has no nodes: set %s to the pool's, "
            "or give [pool] id a new name (or delete the pool, or resize it to 0 nodes)"
            % (pool_id, t.account, key, _show(existing, key), _show(body, key),
               _FIXES.get(key, key)))
    if not changes:
        return "up to date"
    _check_packages_reach_nodes(pool_id, body, existing)
    if not dry_run:
        _update(clients, pool_id, {"properties": {k: body["properties"][k] for k in changes}})
    nodes = _nodes(existing)
    note = "; its %d node(s) get the new start task after a reboot" % nodes \
        if nodes and "startTask" in changes else ""
    return "%s %s%s" % ("updated" if not dry_run else "would update", ", ".join(changes), note)


def _check_packages_reach_nodes(pool_id: str, body: Dict[str, Any],
                                existing: Dict[str, Any]) -> None:
    """Refuse a package version new to a pool that has nodes: Azure gives a pool's changed
    packages only to nodes that join, reboot or are reimaged (BATCH.md 1.3), so the job's
    tasks would find no package variable on the nodes there and fail (the launcher's exit 21).
    Checked before anything changes, so the pool stays as it was."""
    nodes = _nodes(existing)
    added = sorted(set(normalized(body)["applicationPackages"] or []) -
                   set(normalized(existing)["applicationPackages"] or []))
    if not nodes or not added:
        return
    names = ", ".join("%s %s" % (ref.rsplit("/", 1)[-1], version) for ref, version in added)
    raise ConflictError(
        "pool %s has %d node(s), and Azure gives a pool's new application package (%s) only "
        "to nodes that join, reboot or are reimaged: the job's tasks would fail there (exit "
        "21, no package variable): deploy to a new pool (--set pool.id=NAME), or resize pool "
        "%s to 0 nodes (az batch pool resize) and deploy again" % (pool_id, nodes, names,
                                                                 pool_id))


def _get(clients: Clients, pool_id: str) -> Optional[Dict[str, Any]]:
    from azure.core.exceptions import ResourceNotFoundError

    t = clients.target
    try:
        return clients.mgmt.pool.get(t.resource_group, t.account, pool_id).as_dict()
    except ResourceNotFoundError as e:
        if "pool" in str(getattr(getattr(e, "error", None), "code", "")).lower():
            return None
        raise translate(e, "reading pool %s" % pool_id, t.where(),
                        not_found=clients.missing_account()) from None
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "reading pool %s" % pool_id, t.where(),
                        not_found=clients.missing_account()) from None


def _create(clients: Clients, pool_id: str, body: Dict[str, Any]) -> None:
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

    t = clients.target
    try:
        clients.mgmt.pool.create(t.resource_group, t.account, pool_id, body,
                                 match_condition=MatchConditions.IfMissing)
    except (ResourceExistsError, ResourceModifiedError) as e:
        if _get(clients, pool_id) is None:  # a 409 that is not the pool: a quota, ...
            raise translate(e, "creating pool %s" % pool_id, t.where(),
                            not_found=clients.missing_account()) from None
        ensure_pool(clients, pool_id, body)  # created meanwhile: compare it
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "creating pool %s" % pool_id, t.where(),
                        not_found=clients.missing_account()) from None


def _update(clients: Clients, pool_id: str, patch: Dict[str, Any]) -> None:
    t = clients.target
    try:
        clients.mgmt.pool.update(t.resource_group, t.account, pool_id, patch)
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "updating pool %s" % pool_id, t.where()) from None


def _nodes(pool: Dict[str, Any]) -> int:
    props = pool.get("properties") or {}
    return int(props.get("currentDedicatedNodes") or 0) + int(
        props.get("currentLowPriorityNodes") or 0)


# -- comparing -----------------------------------------------------------------------------


def compare(ours: Dict[str, Any], theirs: Dict[str, Any]) -> List[str]:
    """The keys in which the spec's pool and the existing one differ (in the order of
    FIXED then UPDATABLE); a key the service does not echo is not compared."""
    a, b = normalized(ours), normalized(theirs)
    return [key for key in FIXED + UPDATABLE if b.get(key) is not None and a.get(key) != b[key]]


def normalized(pool: Dict[str, Any]) -> Dict[str, Any]:
    """A pool's comparable keys, with Azure's case and defaults evened out."""
    props = pool.get("properties") or {}
    vm = ((props.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration")
          or {})
    identity = pool.get("identity") or {}
    policy = props.get("taskSchedulingPolicy") or {}
    return {
        "vmSize": _lower(props.get("vmSize")),
        "deploymentConfiguration": _lowered({"image": vm.get("imageReference"),
                                             "agent": vm.get("nodeAgentSkuId")}) if vm else None,
        "taskSlotsPerNode": props.get("taskSlotsPerNode") or 1 if props.get("vmSize") else None,
        "taskSchedulingPolicy": _lower(policy.get("nodeFillType")) if policy else None,
        "identity": (_lower(identity.get("type")), sorted(
            k.lower() for k in identity.get("userAssignedIdentities") or {})) if identity
        else None,
        "startTask": _start_task(props["startTask"]) if props.get("startTask") else None,
        "applicationPackages": sorted((_lower(r.get("id")), r.get("version") or "")
                                      for r in props.get("applicationPackages") or [])
        if "applicationPackages" in props else None,
        "scaleSettings": _scale(props["scaleSettings"]) if props.get("scaleSettings") else None,
    }


def _start_task(task: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "commandLine": task.get("commandLine"),
        "environment": sorted((s.get("name"), s.get("value") or "")
                              for s in task.get("environmentSettings") or []),
        "user": _lowered(task.get("userIdentity") or {}),
        "retries": task.get("maxTaskRetryCount") or 0,
        "wait": task.get("waitForSuccess", True),
    }


def _scale(scale: Dict[str, Any]) -> Any:
    auto = scale.get("autoScale")
    if auto:
        interval = auto.get("evaluationInterval")
        return ("auto", (auto.get("formula") or "").strip(),
                seconds_of(interval) if interval else 900.0)
    fixed = scale.get("fixedScale") or {}
    return ("fixed", int(fixed.get("targetDedicatedNodes") or 0),
            int(fixed.get("targetLowPriorityNodes") or 0))


def _show(pool: Dict[str, Any], key: str) -> str:
    value = normalized(pool).get(key)
    if isinstance(value, tuple) and key == "identity":
        return ", ".join(value[1]) or value[0]
    if isinstance(value, dict):
        return ", ".join(str(v) for v in value.values() if v)
    return str(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _lowered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lowered(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, list):
        return [_lowered(v) for v in value]
    return _lower(value)
