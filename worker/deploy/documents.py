"""The documents a user deploys, made from the spec: the pool (an ARM template, since the
data plane cannot give a pool its user-assigned identity: BATCH.md 1.10), the job and the
tasks (data-plane JSON for ``az batch job create`` and ``az batch task create --json-file``).

Exit codes map to Batch's actions in every task's ``exitConditions``: exit 2 (configuration
or deployment: a missing role, secret or setting) and a pre-processing error disable the job,
so a person can fix the deployment and enable it again instead of watching every task fail
the same way; every other failure leaves the job running (``jobAction: none``). What a failed
task does to the tasks that depend on it (the merge) is the spec's ``dependency_action``,
``block`` (Batch's default) or ``satisfy``. Batch retries every non-zero exit up to
``maxTaskRetryCount`` whatever ``exitConditions`` say: the harness makes a retry of a
deterministic failure exit at once (docs/guarantees.md, "Retries of permanent failures").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from ..jobfiles import items_file
from .commandline import start_task_command_line, task_command_line
from .errors import TaskIdError
from .fanout import check_template, expand, item_name
from .images import pool_image
from .specfile import Spec, environment

ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
POOL_API_VERSION = "2024-07-01"
#: Tasks per ``az batch task create`` request (the API's limit), and its body limit.
COLLECTION_SIZE = 100
COLLECTION_BYTES = 1000000
#: Our exit codes and the job action each asks of Batch (docs/deploying.md, "The spec file").
JOB_ACTIONS: Tuple[Tuple[int, str], ...] = (
    (1, "none"), (2, "disable"), (3, "none"), (4, "none"), (5, "none"), (124, "none"),
    (130, "none"), (143, "none"))
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def pool_template(spec: Spec) -> Dict[str, Any]:
    """An ARM deployment template with the pool: ``az deployment group create``."""
    app, version = package_of(spec)
    account = spec.require("pool", "account")
    pool_id = check_id(spec.require("pool", "id"), "pool")
    slots = spec.get("pool", "task_slots")
    env = [("WORKER_TASK_SLOTS", str(slots))] + environment(spec, "pool")
    image, node_agent = pool_image(spec)
    properties = {
        "vmSize": spec.get("pool", "vm_size"),
        "deploymentConfiguration": {"virtualMachineConfiguration": {
            "imageReference": image, "nodeAgentSkuId": node_agent}},
        "scaleSettings": _scale(spec),
        "taskSlotsPerNode": slots,
        "taskSchedulingPolicy": {"nodeFillType": spec.get("pool", "fill").capitalize()},
        "startTask": {
            "commandLine": start_task_command_line(app, version),
            "environmentSettings": _settings(env),
            "userIdentity": {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}},
            "maxTaskRetryCount": spec.get("pool", "start_task_retries"),
            "waitForSuccess": True,
        },
        "applicationPackages": [{
            "id": "[resourceId('Microsoft.Batch/batchAccounts/applications', '%s', '%s')]"
                  % (account, app),
            "version": version}],
    }
    resource = {
        "type": "Microsoft.Batch/batchAccounts/pools", "apiVersion": POOL_API_VERSION,
        "name": "%s/%s" % (account, pool_id),
        "identity": {"type": "UserAssigned",
                     "userAssignedIdentities": {spec.require("pool", "identity"): {}}},
        "properties": properties,
    }
    return {"$schema": ARM_SCHEMA, "contentVersion": "1.0.0.0", "resources": [resource]}


def _scale(spec: Spec) -> Dict[str, Any]:
    formula = spec.get("pool", "autoscale")
    if formula:
        minutes = spec.get("pool", "autoscale_minutes")
        return {"autoScale": {"formula": formula, "evaluationInterval": duration(minutes * 60)}}
    return {"fixedScale": {"targetDedicatedNodes": spec.get("pool", "nodes"),
                           "targetLowPriorityNodes": spec.get("pool", "spot_nodes")}}


def job_document(spec: Spec) -> Dict[str, Any]:
    """The job: ``az batch job create --json-file``."""
    env = [("AZURE_CLIENT_ID", spec.require("pool", "client_id"))]
    for key, name in (("lake_url", "WORKER_LAKE_URL"), ("vault_url", "WORKER_VAULT_URL")):
        if spec.get("job", key):
            env.append((name, spec.get("job", key)))
    env.append(("WORKER_TASK_SLOTS", str(spec.get("pool", "task_slots"))))
    env += environment(spec, "job")
    return {
        "id": check_id(spec.require("job", "id"), "job"),
        "poolInfo": {"poolId": check_id(spec.require("pool", "id"), "pool")},
        "onAllTasksComplete": "terminatejob",
        "onTaskFailure": "performexitoptionsjobaction",
        "usesTaskDependencies": spec.has("merge"),
        "commonEnvironmentSettings": _settings(env),
    }


def task_documents(spec: Spec, items: Sequence[str]) -> List[Dict[str, Any]]:
    """One task per item, with integer ids from ``first_id``, then the merge task (when
    the spec has one) depending on all of them by ``taskIdRanges``."""
    return list(iter_task_documents(spec, items))


def iter_task_documents(spec: Spec, items: Sequence[str]) -> Iterator[Dict[str, Any]]:
    """:func:`task_documents` one at a time: a fan-out of 100,000 items is written
    without holding 100,000 documents (about 8 KB each) in memory."""
    app, version = package_of(spec)
    job_id = check_id(spec.require("job", "id"), "job")
    template = spec.require("tasks", "command")
    check_template(template, "tasks", ("item", "item_name", "task_id", "job_id"))
    first = spec.get("tasks", "first_id")
    action = spec.get("tasks", "dependency_action")
    common = _common(spec, "tasks", action)
    seen: Set[str] = set()
    if spec.has("merge"):  # checked first: nothing is written for a job Batch would refuse
        merge_id = spec.get("merge", "id")
        if merge_id.isdigit() and str(int(merge_id)) == merge_id and \
                first <= int(merge_id) < first + len(items):
            raise _used_twice(merge_id)
    for n, item in enumerate(items):
        task_id = check_id(str(first + n), "task")
        args = expand(template, {"item": item, "item_name": item_name(item),
                                 "task_id": task_id, "job_id": job_id})
        yield _unique(_one_task(common, task_id, item, (app, version, args)), seen)
    if spec.has("merge"):
        yield _unique(_merge(spec, (app, version), job_id, first, first + len(items) - 1),
                      seen)


def _merge(spec: Spec, package: Tuple[str, str], job_id: str, first: int, last: int
           ) -> Dict[str, Any]:
    template = spec.require("merge", "command")
    check_template(template, "merge", ("items_file", "task_id", "job_id"))
    task_id = check_id(spec.get("merge", "id"), "merge task")
    args = expand(template, {"items_file": items_file(job_id), "task_id": task_id,
                             "job_id": job_id})
    task = _task(spec, "merge", task_id, "merge of tasks %d-%d" % (first, last),
                 (package[0], package[1], args), "block")
    task["dependsOn"] = {"taskIdRanges": [{"start": first, "end": last}]}
    return task


def _task(spec: Spec, section: str, task_id: str, display: str,
          command: Tuple[str, str, List[str]], action: str) -> Dict[str, Any]:
    return _one_task(_common(spec, section, action), task_id, display, command)


def _one_task(common: Dict[str, Any], task_id: str, display: str,
              command: Tuple[str, str, List[str]]) -> Dict[str, Any]:
    task = {"id": task_id, "displayName": display[:1024],
            "commandLine": task_command_line(*command)}
    task.update(common)
    return task


def _common(spec: Spec, section: str, action: str) -> Dict[str, Any]:
    """What every task of a section has alike: settings, constraints, slots, exit options
    (made once for a fan-out, however many tasks it has)."""
    retries = spec.get(section, "retries")
    timeout: Optional[float] = spec.get(section, "timeout")
    grace = spec.get(section, "grace")
    env = [("WORKER_REQUIRED_SLOTS", str(spec.get(section, "slots"))),
           ("WORKER_TASK_RETRIES", str(retries))]
    constraints: Dict[str, Any] = {"maxTaskRetryCount": retries}
    if timeout:
        env += [("WORKER_TIMEOUT", _number(timeout)), ("WORKER_GRACE", _number(grace))]
        constraints["maxWallClockTime"] = duration(timeout + grace + spec.get(section, "margin"))
    env += environment(spec, section)
    return {
        "environmentSettings": _settings(env),
        "constraints": constraints,
        "requiredSlots": spec.get(section, "slots"),
        "exitConditions": exit_conditions(action),
    }


def exit_conditions(dependency_action: str) -> Dict[str, Any]:
    """Our exit codes and Batch's actions (see the module's docstring)."""
    def options(job_action: str) -> Dict[str, str]:
        return {"jobAction": job_action, "dependencyAction": dependency_action}

    return {
        "exitCodes": [{"code": code, "exitOptions": options(action)}
                      for code, action in JOB_ACTIONS],
        "preProcessingError": options("disable"),
        "fileUploadError": options("none"),
        "default": options("none"),
    }


def items_document(job_id: str, first_id: int, items: Sequence[str]) -> Dict[str, Any]:
    """What the items file holds: the items in task order and the task id of each."""
    return {"job_id": job_id, "items": list(items),
            "task_ids": [str(first_id + n) for n in range(len(items))]}


def collections(tasks: Iterable[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """The tasks in request-sized collections: at most 100 tasks and under 1 MB each."""
    return list(iter_collections(tasks))


def iter_collections(tasks: Iterable[Dict[str, Any]]) -> Iterator[List[Dict[str, Any]]]:
    """:func:`collections` one at a time, as ``tasks`` come."""
    for texts in iter_collection_texts(tasks):
        yield [json.loads(text) for text in texts]


def iter_collection_texts(tasks: Iterable[Dict[str, Any]]) -> Iterator[List[str]]:
    """The collections as the JSON text of each task (compact: the C encoder, about ten
    times faster than an indented dump, which 100,000 tasks notice)."""
    current: List[str] = []
    size = 2
    for task in tasks:
        text = json.dumps(task, ensure_ascii=False)
        length = len(text.encode("utf-8")) + 2
        if current and (len(current) == COLLECTION_SIZE or size + length > COLLECTION_BYTES):
            yield current
            current, size = [], 2
        current.append(text)
        size += length
    if current:
        yield current


def duration(seconds: float) -> str:
    """Whole seconds (rounded up) as an ISO 8601 duration, in the form Batch's SDKs write:
    ``PT11M30S``, ``P1DT1H``."""
    total = max(0, int(math.ceil(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join("%d%s" % (n, unit) for n, unit in ((hours, "H"), (minutes, "M"),
                                                      (secs, "S")) if n)
    text = "P" + ("%dD" % days if days else "") + ("T" + time if time else "")
    return text if text != "P" else "P0D"


def check_id(value: str, what: str) -> str:
    """A pool, job or task id as Batch takes it: 1-64 letters, digits, '-' and '_'."""
    if not _ID.match(value):
        raise TaskIdError("%s id %r is not one Batch takes: 1 to 64 letters, digits, '-' and "
                          "'_'" % (what, value))
    return value


def package_of(spec: Spec) -> Tuple[str, str]:
    return spec.require("package", "app"), spec.require("package", "version")


def _unique(task: Dict[str, Any], seen: Set[str]) -> Dict[str, Any]:
    key = task["id"].lower()  # Batch's ids are case-insensitive
    if key in seen:
        raise _used_twice(task["id"])
    seen.add(key)
    return task


def _used_twice(task_id: str) -> TaskIdError:
    return TaskIdError("task id %r is used twice in the job (ids are case-insensitive): "
                       "give the merge task another [merge] id" % task_id)


def _settings(pairs: Sequence[Tuple[str, str]]) -> List[Dict[str, str]]:
    """Environment settings; a name given again (the spec's own environment) wins."""
    merged: Dict[str, str] = {}
    for name, value in pairs:
        merged[name] = value
    return [{"name": name, "value": value} for name, value in merged.items()]


def _number(value: float) -> str:
    return "%g" % value
