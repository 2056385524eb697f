"""Pools: the operations on them (add, get, exists, list, patch, update properties, delete,
resize, stop resize, enable/disable/evaluate autoscale, remove nodes), and creating and
updating a pool as both planes do (the account plane's pools come here too). What a pool
does on its own is ``pool.py``.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from . import quotas, schema
from .errors import BatchError, property_error
from .pool import Pool
from .scaling import AutoScaler, formula_error

if TYPE_CHECKING:
    from .app import Call
    from .service import BatchService

DEFAULT_INTERVAL = 15 * 60.0  # autoScaleEvaluationInterval when none is given
MIN_INTERVAL, MAX_INTERVAL = 5 * 60.0, 168 * 3600.0


def add(service: "BatchService", call: "Call") -> Any:
    body = call.body(schema.POOL)
    create_pool(service, body)
    return call.created("%s/pools/%s" % (service.url, body["id"]), service.pools[
        body["id"].lower()])


def create_pool(service: "BatchService", body: Dict[str, Any],
                identity: Optional[Dict[str, Any]] = None) -> Pool:
    """A new pool from a data-plane body (the account plane's pools come here too)."""
    if body["id"].lower() in service.pools:
        raise BatchError("PoolExists")
    quotas.check_pool_count(service)
    scaling = _scaling(body)
    service.apps.check_refs(body.get("applicationPackageReferences"))
    spec = copy.deepcopy(body)
    pool = Pool(service, spec)
    if scaling is not None:
        pool.scaler = new_scaler(service, pool, *scaling)
    service.pools[pool.id.lower()] = pool
    if identity:
        service.identities[pool.id.lower()] = identity
    service.attach_jobs(pool)
    service.wake()
    return pool


def _scaling(body: Dict[str, Any]) -> Optional[Tuple[str, float]]:
    """(formula, interval) of an autoscale pool, None for a fixed one; what Batch refuses."""
    if body.get("enableAutoScale"):
        if not body.get("autoScaleFormula"):
            raise property_error("MissingRequiredProperty", "autoScaleFormula")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if body.get(name) is not None:
                raise property_error("InvalidPropertyValue", name, body[name],
                                     "not allowed when enableAutoScale is true")
        return body["autoScaleFormula"], interval_seconds(body.get("autoScaleEvaluationInterval"))
    if body.get("autoScaleFormula") is not None:
        raise property_error("InvalidPropertyValue", "autoScaleFormula",
                             reason="allowed only when enableAutoScale is true")
    return None


def interval_seconds(text: Optional[str]) -> float:
    from .wire import duration_seconds

    if text is None:
        return DEFAULT_INTERVAL
    seconds = duration_seconds(text) or 0.0
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise property_error("InvalidPropertyValue", "autoScaleEvaluationInterval", text,
                             "from 5 minutes to 168 hours")
    return seconds


def new_scaler(service: "BatchService", pool: Pool, formula: str, interval: float) -> AutoScaler:
    try:
        return AutoScaler(formula, interval, service.clock.now())
    except Exception as e:  # the formula module's FormulaError, whatever it subclasses
        raise formula_error(e) from None


def get(service: "BatchService", call: "Call") -> Any:
    pool = call.conditional(service.pool(call.params["poolId"]))
    return call.resource(pool.to_json(), pool, "pools/@Element")


def exists(service: "BatchService", call: "Call") -> Any:
    pool = service.pools.get(call.params["poolId"].lower())
    if pool is None:
        return call.empty(404)
    return call.empty(200, pool)


def list_pools(service: "BatchService", call: "Call") -> Any:
    return call.listing(list(service.pools.values()), "pools", render=Pool.to_json,
                        key=lambda p: p.id.lower())


def delete(service: "BatchService", call: "Call") -> Any:
    pool = call.conditional(service.pool(call.params["poolId"]))
    service.delete_pool(pool)
    return call.empty(202)


def patch(service: "BatchService", call: "Call") -> Any:
    pool = call.conditional(service.pool(call.params["poolId"]))
    body = call.body(schema.POOL_PATCH)
    update_pool(service, pool, body)
    return call.empty(200, pool)


def replace(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    body = call.body(schema.POOL_REPLACE)
    if "startTask" not in body:
        pool.spec.pop("startTask", None)
    update_pool(service, pool, body)
    return call.empty(204, pool)


def update_pool(service: "BatchService", pool: Pool, body: Dict[str, Any]) -> None:
    _active(pool)
    if "taskSlotsPerNode" in body and body["taskSlotsPerNode"] != pool.slots and pool.nodes:
        raise property_error("InvalidPropertyValue", "taskSlotsPerNode",
                             body["taskSlotsPerNode"], "the pool has nodes: shrink it to 0 "
                             "first")
    service.apps.check_refs(body.get("applicationPackageReferences"))
    for key, value in body.items():
        if value is None or (isinstance(value, list) and not value):
            pool.spec.pop(key, None)
        else:
            pool.spec[key] = copy.deepcopy(value)
    pool._adopt(pool.spec)
    if "taskSchedulingPolicy" in body:
        pool.scheduler.fill = body["taskSchedulingPolicy"]["nodeFillType"].lower()
    pool.touch()


def resize(service: "BatchService", call: "Call") -> Any:
    pool = call.conditional(service.pool(call.params["poolId"]))
    body = call.body(schema.POOL_RESIZE)
    _sized_by_hand(pool, "resize it by its formula, or disable automatic scaling first")
    if pool.allocation_state() != "steady":
        raise BatchError("PoolBeingResized")
    if body.get("resizeTimeout"):
        pool.resize_timeout = body["resizeTimeout"]
    pool.set_targets(body.get("targetDedicatedNodes", 0), body.get("targetLowPriorityNodes", 0),
                     body.get("nodeDeallocationOption"))
    return call.empty(202, pool)


def stop_resize(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    _active(pool)
    pool.stop_resize()
    return call.empty(202, pool)


def enable_autoscale(service: "BatchService", call: "Call") -> Any:
    pool = call.conditional(service.pool(call.params["poolId"]))
    body = call.body(schema.POOL_AUTOSCALE)
    _active(pool)
    if pool.scaler is None and pool.allocation_state() != "steady":
        raise BatchError("PoolBeingResized")
    formula = body.get("autoScaleFormula") or (pool.scaler.text if pool.scaler else None)
    if not formula:
        raise property_error("MissingRequiredProperty", "autoScaleFormula")
    interval = interval_seconds(body["autoScaleEvaluationInterval"]) \
        if body.get("autoScaleEvaluationInterval") else \
        (pool.scaler.interval if pool.scaler else DEFAULT_INTERVAL)
    history = pool.scaler.history if pool.scaler else None
    pool.scaler = new_scaler(service, pool, formula, interval)
    if history is not None:
        pool.scaler.history = history
    pool.touch()
    service.wake()
    return call.empty(200, pool)


def disable_autoscale(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    pool.scaler = None
    pool.touch()
    return call.empty(200, pool)


def evaluate_autoscale(service: "BatchService", call: "Call") -> Any:
    pool = service.pool(call.params["poolId"])
    body = call.body(schema.POOL_EVALUATE)
    if pool.scaler is None:
        raise BatchError("OperationInvalidForCurrentState",
                         "Automatic scaling is not enabled on the pool: enable it to evaluate "
                         "a formula.")
    run = pool.scaler.evaluate_text(body["autoScaleFormula"], pool, service.clock.now())
    return call.document(200, run)


def remove_nodes(service: "BatchService", call: "Call") -> Any:
    pool = call.conditional(service.pool(call.params["poolId"]))
    body = call.body(schema.NODE_REMOVE)
    _sized_by_hand(pool, "its formula sets its size")
    nodes = []
    for index, node_id in enumerate(body["nodeList"]):
        node = pool.nodes.get(node_id)
        if node is None:
            raise property_error("InvalidPropertyValue", "nodeList[%d]" % index, node_id,
                                 "no such node in pool %s" % pool.id)
        nodes.append(node)
    option = (body.get("nodeDeallocationOption") or "requeue").lower()
    for node in nodes:
        if node.dedicated:
            pool.target_dedicated -= 1
        else:
            pool.target_low -= 1
        if node.remove(option):
            del pool.nodes[node.id]
    pool.alloc_changed = time.time()
    pool.touch()
    service.wake()
    return call.empty(202, pool)


def _sized_by_hand(pool: Pool, why: str) -> None:
    """What a resize or a removal of nodes needs: an active pool without autoscale."""
    _active(pool)
    if pool.scaler is not None:
        raise BatchError("OperationInvalidForCurrentState",
                         "The pool has automatic scaling enabled: %s." % why)


def _active(pool: Pool) -> None:
    if pool.state != "active":
        raise BatchError("PoolBeingDeleted")
