"""The pool, job and task documents as the local node reads them, checked before anything
runs: the ids Batch takes, the dependencies (every id exists, no cycle), the slots, the pool
the job names, command lines that split into words.

Accepted shapes: the pool as ``spec pool`` writes it (an ARM template) or its pool resource;
the job as ``az batch job create --json-file`` takes it; tasks as a list (a collection), a
``{"value": [...]}`` collection or one task, in any number of files.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..documents import check_id
from ..errors import DependencyCycle, MissingDependency, SpecError, TaskIdError

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_RESOURCE_ID_APP = re.compile(r"'([^']+)'\s*\)\]$")


@dataclass(frozen=True)
class PackageRef:
    """An application package reference: the app id and its version (None: the default)."""

    app: str
    version: Optional[str]


@dataclass(frozen=True)
class StartTask:
    command_line: str
    argv: List[str]
    environment: Dict[str, str]
    max_retries: int
    wait_for_success: bool


@dataclass(frozen=True)
class Pool:
    id: str
    account: str
    slots: int
    start_task: Optional[StartTask]
    packages: List[PackageRef]


@dataclass(frozen=True)
class Job:
    id: str
    pool_id: str
    environment: Dict[str, str]
    uses_dependencies: bool
    on_task_failure: str
    priority: int = 0
    max_parallel_tasks: int = -1  # -1: no limit


@dataclass(frozen=True)
class Task:
    id: str
    command_line: str
    argv: List[str]
    environment: Dict[str, str]
    required_slots: int
    max_wall_clock: Optional[float]  # seconds
    max_wall_clock_text: Optional[str]
    max_retries: int
    exit_conditions: Dict[str, Any]
    depends_on: List[str] = field(default_factory=list)  # task ids
    packages: List[PackageRef] = field(default_factory=list)
    depends_ranges: List[Tuple[int, int]] = field(default_factory=list)  # taskIdRanges


def load_pool(path: Path) -> Pool:
    """The pool of an ARM template (``spec pool``) or of a bare pool resource."""
    document = read_json(path)
    resource = document
    if isinstance(document, dict) and "resources" in document:
        pools = [r for r in document["resources"] if isinstance(r, dict)
                 and str(r.get("type", "")).lower() == "microsoft.batch/batchaccounts/pools"]
        if len(pools) != 1:
            raise SpecError("%s: expected one Microsoft.Batch/batchAccounts/pools resource, "
                            "found %d" % (path, len(pools)))
        resource = pools[0]
    props = _table(resource, "properties", path)
    account, _, pool_id = str(resource.get("name", "")).rpartition("/")
    start = props.get("startTask")
    return Pool(
        id=check_id(pool_id, "pool"), account=account or "localaccount",
        slots=_int(props.get("taskSlotsPerNode", 1), "taskSlotsPerNode", path, minimum=1),
        start_task=_start_task(start, path) if start else None,
        packages=[_arm_package(p, path) for p in props.get("applicationPackages") or []])


def load_job(path: Path) -> Job:
    document = read_json(path)
    if not isinstance(document, dict):
        raise SpecError("%s: a job is a JSON object" % path)
    pool_id = _table(document, "poolInfo", path).get("poolId")
    return Job(
        id=check_id(str(document.get("id", "")), "job"),
        pool_id=str(pool_id or ""),
        environment=_environment(document.get("commonEnvironmentSettings"), path),
        uses_dependencies=bool(document.get("usesTaskDependencies", False)),
        on_task_failure=str(document.get("onTaskFailure", "noaction")).lower())


def load_tasks(paths: Sequence[Path]) -> List[Task]:
    """Every task of the files, in order, with its dependencies resolved against them all."""
    pairs: List[Tuple[Task, Dict[str, Any]]] = []
    for path in paths:
        document = read_json(path)
        if isinstance(document, dict) and "value" in document:
            document = document["value"]
        for raw in document if isinstance(document, list) else [document]:
            pairs.append(task_from_json(raw, path))
    if not pairs:
        raise SpecError("no task in %s: give the job's task files (spec tasks writes them)"
                        % ", ".join(map(str, paths)))
    ids = [task.id for task, _ in pairs]
    return [replace(task, depends_on=resolve_dependencies(depends, ids, task.id))
            for task, depends in pairs]


def check_job(pool: Pool, job: Job, tasks: Sequence[Task]) -> None:
    """What Batch (or the local node) would refuse, each as one line with its exit code."""
    if job.pool_id.lower() != pool.id.lower():
        raise SpecError("the job runs on pool %r but the pool document is pool %r: pass the "
                        "job's pool" % (job.pool_id, pool.id))
    seen: Dict[str, str] = {}
    for task in tasks:
        if task.id.lower() in seen:
            raise TaskIdError("task id %r is used twice in job %s (ids are case-insensitive)"
                              % (task.id, job.id))
        seen[task.id.lower()] = task.id
        if task.required_slots > pool.slots:
            raise SpecError("task %s needs %d slots but the pool's nodes have %d "
                            "(taskSlotsPerNode): it could never run" % (task.id,
                                                                        task.required_slots,
                                                                        pool.slots))
        if task.depends_on and not job.uses_dependencies:
            raise SpecError("task %s has dependsOn but job %s does not set "
                            "usesTaskDependencies (Batch refuses it: "
                            "TaskDependenciesNotSpecifiedOnJob)" % (task.id, job.id))
    _check_cycles(tasks)


def resolve_dependencies(raw: Dict[str, Any], ids: Sequence[str], task_id: str) -> List[str]:
    """``dependsOn``'s ``taskIds`` and ``taskIdRanges`` as task ids of the job (ranges match
    integer ids, leading zeros ignored, as Batch's do)."""
    by_lower = {i.lower(): i for i in ids}
    found: List[str] = []
    for wanted in raw.get("taskIds") or []:
        if str(wanted).lower() not in by_lower:
            raise MissingDependency("task %s depends on task %r, which the job does not have"
                                    % (task_id, wanted))
        found.append(by_lower[str(wanted).lower()])
    for span in raw.get("taskIdRanges") or []:
        start, end = int(span["start"]), int(span["end"])
        matched = [i for i in ids if i.isdigit() and start <= int(i) <= end]
        if not matched:
            raise MissingDependency("task %s depends on tasks %d-%d, and the job has none of "
                                    "them" % (task_id, start, end))
        found += matched
    return list(dict.fromkeys(found))


def parse_duration(text: str, what: str) -> float:
    """An ISO 8601 duration (``PT10M``, ``P1DT2H``) in seconds."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT"):
        raise SpecError("%s %r is not an ISO 8601 duration such as PT10M" % (what, text))
    days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise SpecError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except ValueError as e:
        raise SpecError("%s is not valid JSON: %s" % (path, e)) from None


def task_from_json(raw: Any, path: Any) -> Tuple[Task, Dict[str, Any]]:
    """One task document (``path`` names where it came from, in messages) and its raw
    ``dependsOn``, which the caller resolves."""
    if not isinstance(raw, dict):
        raise SpecError("%s: a task is a JSON object, got %r" % (path, raw))
    task_id = check_id(str(raw.get("id", "")), "task")
    constraints = raw.get("constraints") or {}
    wall = constraints.get("maxWallClockTime")
    task = Task(
        id=task_id, command_line=_command(raw, path, task_id),
        argv=split_command(_command(raw, path, task_id), "task %s" % task_id),
        environment=_environment(raw.get("environmentSettings"), path),
        required_slots=_int(raw.get("requiredSlots", 1), "requiredSlots", path, minimum=1),
        max_wall_clock=parse_duration(wall, "task %s maxWallClockTime" % task_id)
        if wall else None,
        max_wall_clock_text=wall,
        max_retries=_int(constraints.get("maxTaskRetryCount", 0), "maxTaskRetryCount", path,
                         minimum=-1),
        exit_conditions=raw.get("exitConditions") or {},
        packages=[PackageRef(str(p.get("applicationId")), p.get("version"))
                  for p in raw.get("applicationPackageReferences") or []])
    return task, raw.get("dependsOn") or {}


def split_command(command_line: str, what: str) -> List[str]:
    """Words as Batch splits a command line (no shell): POSIX shell quoting rules."""
    try:
        argv = shlex.split(command_line)
    except ValueError as e:
        raise SpecError("%s: its commandLine cannot be split into words (%s)" % (what, e)
                        ) from None
    if not argv:
        raise SpecError("%s: its commandLine is empty" % what)
    return argv


def _check_cycles(tasks: Sequence[Task]) -> None:
    graph = {t.id: t.depends_on for t in tasks}
    state: Dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: List[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise DependencyCycle("tasks depend on each other in a cycle (%s, each "
                                      "waiting for the next): none of them can ever run; "
                                      "remove one of these dependencies" % " -> ".join(cycle))
            if state.get(dep) is None:
                visit(dep, path + [dep])
        state[node] = 2

    for task in tasks:
        if state.get(task.id) is None:
            visit(task.id, [task.id])


def _start_task(raw: Dict[str, Any], path: Path) -> StartTask:
    command = _command(raw, path, "the start task")
    return StartTask(
        command_line=command, argv=split_command(command, "the pool's start task"),
        environment=_environment(raw.get("environmentSettings"), path),
        max_retries=_int(raw.get("maxTaskRetryCount", 0), "startTask.maxTaskRetryCount",
                         path, minimum=-1),
        wait_for_success=bool(raw.get("waitForSuccess", True)))


def _arm_package(raw: Dict[str, Any], path: Path) -> PackageRef:
    """ARM's reference: ``id`` is the application's ARM id or a resourceId() expression."""
    text = str(raw.get("id", ""))
    match = _RESOURCE_ID_APP.search(text)
    app = match.group(1) if match else text.rstrip("/").rpartition("/applications/")[2]
    if not app:
        raise SpecError("%s: applicationPackages id %r names no application" % (path, text))
    return PackageRef(app, raw.get("version"))


def _command(raw: Dict[str, Any], path: Path, what: str) -> str:
    command = raw.get("commandLine")
    if not isinstance(command, str) or not command.strip():
        raise SpecError("%s: %s has no commandLine" % (path, what))
    return command


def _environment(settings: Any, path: Path) -> Dict[str, str]:
    env: Dict[str, str] = {}
    for item in settings or []:
        if not isinstance(item, dict) or not item.get("name"):
            raise SpecError("%s: an environment setting needs a name and a value, got %r"
                            % (path, item))
        env[str(item["name"])] = str(item.get("value", ""))
    return env


def _table(document: Any, key: str, path: Path) -> Dict[str, Any]:
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, dict):
        raise SpecError("%s has no %s object" % (path, key))
    return value


def _int(value: Any, what: str, path: Path, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError("%s: %s must be a whole number >= %d, got %r" % (path, what, minimum,
                                                                         value))
    return value


def exit_options(conditions: Dict[str, Any], exit_code: Optional[int]) -> Tuple[str, str]:
    """(jobAction, dependencyAction) of a task that completed with ``exit_code`` (None: it
    could not start, a pre-processing error), with Batch's defaults: ``none`` and
    ``satisfy`` for 0, ``terminate`` and ``block`` otherwise."""
    defaults = ("none", "satisfy") if exit_code == 0 else ("terminate", "block")
    options = None
    if exit_code is None:
        options = conditions.get("preProcessingError")
    else:
        for entry in conditions.get("exitCodes") or []:
            if entry.get("code") == exit_code:
                options = entry.get("exitOptions")
                break
        for span in conditions.get("exitCodeRanges") or [] if options is None else []:
            if span.get("start", 0) <= exit_code <= span.get("end", -1):
                options = span.get("exitOptions")
                break
    if options is None and exit_code != 0:
        options = conditions.get("default")
    options = options or {}
    return (str(options.get("jobAction", defaults[0])).lower(),
            str(options.get("dependencyAction", defaults[1])).lower())
