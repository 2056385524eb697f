"""The request bodies Batch takes, checked as Batch checks them: a property it does not know,
a required one missing, a value of the wrong type or out of range is a 400 naming the
property by its path in the body (``constraints.maxTaskRetryCount``, ``value[3].id``).

Property names come from Batch's REST reference (API versions 2024-02-01.19.0 and
2025-06-01, what azure-batch 14.2 and 15.1 send). Objects marked :data:`OPAQUE` are taken
and answered back as given but not simulated (a VM's disks, networking, certificates).
Features the service does not run (job manager, preparation and release tasks, container
tasks, multi-instance tasks, resource and output files, auto pools) are refused with the
reason, rather than accepted and silently ignored.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Sequence

from .errors import BatchError, property_error
from .wire import duration_seconds

ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NOT_SERVED = "the local Batch service does not run this (see docs/batch-service.md)"


class Field:
    """One property's rule: its kind and limits; for an object, its properties."""

    def __init__(self, kind: str, required: bool = False, choices: Sequence[str] = (),
                 item: Optional["Field"] = None, props: Optional[Dict[str, "Field"]] = None,
                 minimum: Optional[int] = None, maximum: Optional[int] = None,
                 max_length: Optional[int] = None, pattern: Optional["re.Pattern"] = None,
                 refuse: str = "") -> None:
        self.kind, self.required, self.choices = kind, required, tuple(choices)
        self.item, self.props = item, props or {}
        self.minimum, self.maximum, self.max_length = minimum, maximum, max_length
        self.pattern, self.refuse = pattern, refuse

    def req(self) -> "Field":
        """The same rule, for a required property."""
        copy = Field(self.kind, True, self.choices, self.item, self.props, self.minimum,
                     self.maximum, self.max_length, self.pattern, self.refuse)
        return copy


def obj(**props: Field) -> Field:
    return Field("object", props=props)


def lst(item: Field, maximum: Optional[int] = None) -> Field:
    return Field("list", item=item, maximum=maximum)


def enum(*choices: str) -> Field:
    return Field("enum", choices=[c.lower() for c in choices])


def integer(minimum: Optional[int] = None, maximum: Optional[int] = None) -> Field:
    return Field("int", minimum=minimum, maximum=maximum)


def text(max_length: Optional[int] = None, pattern: Optional["re.Pattern"] = None) -> Field:
    return Field("str", max_length=max_length, pattern=pattern)


STR, BOOL, DURATION, ANY = text(), Field("bool"), Field("duration"), Field("any")
OPAQUE = Field("object-any")  # any object: answered back, not simulated
MAP = Field("map")
REFUSED = Field("any", refuse=NOT_SERVED)

ENVIRONMENT = lst(obj(name=STR.req(), value=STR))
APP_REFS = lst(obj(applicationId=STR.req(), version=STR))
METADATA = lst(obj(name=STR.req(), value=STR.req()))
IDENTITY_REF = obj(resourceId=STR)
USER_IDENTITY = obj(username=STR, autoUser=obj(scope=enum("task", "pool"),
                                                elevationLevel=enum("nonadmin", "admin")))
TASK_CONSTRAINTS = obj(maxWallClockTime=DURATION, retentionTime=DURATION,
                       maxTaskRetryCount=integer(-1))
EXIT_OPTIONS = obj(jobAction=enum("none", "disable", "terminate"),
                   dependencyAction=enum("satisfy", "block"))
EXIT_CONDITIONS = obj(
    exitCodes=lst(obj(code=integer().req(), exitOptions=EXIT_OPTIONS.req())),
    exitCodeRanges=lst(obj(start=integer().req(), end=integer().req(),
                           exitOptions=EXIT_OPTIONS.req())),
    preProcessingError=EXIT_OPTIONS, fileUploadError=EXIT_OPTIONS, default=EXIT_OPTIONS)
DEPENDS_ON = obj(taskIds=lst(STR), taskIdRanges=lst(obj(start=integer().req(),
                                                        end=integer().req())))

TASK = obj(
    id=text(64, ID).req(), displayName=text(1024), commandLine=STR.req(),
    containerSettings=REFUSED, exitConditions=EXIT_CONDITIONS, resourceFiles=REFUSED,
    outputFiles=REFUSED, environmentSettings=ENVIRONMENT,
    affinityInfo=obj(affinityId=STR.req()), constraints=TASK_CONSTRAINTS,
    requiredSlots=integer(1), userIdentity=USER_IDENTITY, multiInstanceSettings=REFUSED,
    dependsOn=DEPENDS_ON, applicationPackageReferences=APP_REFS,
    authenticationTokenSettings=obj(access=lst(enum("job"))))
TASK_COLLECTION = obj(value=lst(TASK).req())
TASK_UPDATE = obj(constraints=TASK_CONSTRAINTS)

START_TASK = obj(commandLine=STR.req(), containerSettings=REFUSED, resourceFiles=REFUSED,
                 environmentSettings=ENVIRONMENT, userIdentity=USER_IDENTITY,
                 maxTaskRetryCount=integer(-1), waitForSuccess=BOOL)
VM_CONFIGURATION = obj(
    imageReference=obj(publisher=STR, offer=STR, sku=STR, version=STR,
                       virtualMachineImageId=STR, exactVersion=STR, sharedGalleryImageId=STR,
                       communityGalleryImageId=STR).req(),
    nodeAgentSKUId=STR.req(), windowsConfiguration=OPAQUE, dataDisks=ANY, licenseType=STR,
    containerConfiguration=OPAQUE, diskEncryptionConfiguration=OPAQUE,
    nodePlacementConfiguration=OPAQUE, extensions=ANY, osDisk=OPAQUE, securityProfile=OPAQUE,
    serviceArtifactReference=OPAQUE)
SCHEDULING_POLICY = obj(nodeFillType=enum("spread", "pack").req())
_POOL_COMMON = dict(
    displayName=text(1024), vmSize=STR, virtualMachineConfiguration=VM_CONFIGURATION,
    cloudServiceConfiguration=REFUSED, enableInterNodeCommunication=BOOL,
    networkConfiguration=OPAQUE, startTask=START_TASK, certificateReferences=ANY,
    applicationPackageReferences=APP_REFS, applicationLicenses=lst(STR),
    taskSlotsPerNode=integer(1, 256), taskSchedulingPolicy=SCHEDULING_POLICY, userAccounts=ANY,
    metadata=METADATA, mountConfiguration=ANY, targetNodeCommunicationMode=enum(
        "default", "classic", "simplified"), upgradePolicy=OPAQUE, resourceTags=MAP)
POOL = obj(id=text(64, ID).req(), resizeTimeout=DURATION, targetDedicatedNodes=integer(0),
           targetLowPriorityNodes=integer(0), enableAutoScale=BOOL, autoScaleFormula=STR,
           autoScaleEvaluationInterval=DURATION, **_POOL_COMMON)
POOL.props["vmSize"] = STR.req()
POOL_PATCH = obj(**_POOL_COMMON)
POOL_REPLACE = obj(startTask=START_TASK, certificateReferences=ANY,
                   applicationPackageReferences=APP_REFS.req(), metadata=METADATA.req(),
                   targetNodeCommunicationMode=enum("default", "classic", "simplified"))
DEALLOCATION = enum("requeue", "terminate", "taskcompletion", "retaineddata")
POOL_RESIZE = obj(targetDedicatedNodes=integer(0), targetLowPriorityNodes=integer(0),
                  resizeTimeout=DURATION, nodeDeallocationOption=DEALLOCATION)
POOL_AUTOSCALE = obj(autoScaleFormula=STR, autoScaleEvaluationInterval=DURATION)
POOL_EVALUATE = obj(autoScaleFormula=STR.req())
NODE_REMOVE = obj(nodeList=lst(STR, maximum=100).req(), resizeTimeout=DURATION,
                  nodeDeallocationOption=DEALLOCATION)

JOB_CONSTRAINTS = obj(maxWallClockTime=DURATION, maxTaskRetryCount=integer(-1))
POOL_INFO = obj(poolId=STR, autoPoolSpecification=REFUSED)
_JOB_COMMON = dict(priority=integer(-1000, 1000), maxParallelTasks=integer(-1),
                   allowTaskPreemption=BOOL, constraints=JOB_CONSTRAINTS, metadata=METADATA,
                   onAllTasksComplete=enum("noaction", "terminatejob"),
                   networkConfiguration=OPAQUE)
JOB = obj(id=text(64, ID).req(), displayName=text(1024), jobManagerTask=REFUSED,
          jobPreparationTask=REFUSED, jobReleaseTask=REFUSED,
          commonEnvironmentSettings=ENVIRONMENT, poolInfo=POOL_INFO.req(),
          onTaskFailure=enum("noaction", "performexitoptionsjobaction"),
          usesTaskDependencies=BOOL, **_JOB_COMMON)
JOB_PATCH = obj(poolInfo=POOL_INFO, **_JOB_COMMON)
JOB_REPLACE = obj(poolInfo=POOL_INFO.req(), **_JOB_COMMON)
JOB_DISABLE = obj(disableTasks=enum("requeue", "terminate", "wait").req())
JOB_TERMINATE = obj(terminateReason=text(64))


def check(body: Any, rule: Field, path: str = "") -> Any:
    """``body`` if it follows ``rule``; else the BatchError Batch answers."""
    if rule.refuse:
        raise property_error("UnsupportedProperty", path, reason=rule.refuse)
    checker = _CHECKS.get(rule.kind)
    if checker is not None:
        checker(body, rule, path)
    return body


def _object(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, dict):
        raise _invalid(path or "(body)", body, "expected a JSON object")
    for name, value in body.items():
        field = rule.props.get(name)
        where = "%s.%s" % (path, name) if path else name
        if field is None:
            raise property_error("UnsupportedProperty", where,
                                 reason="no such property in this object")
        if value is not None:
            check(value, field, where)
    for name, field in rule.props.items():
        if field.required and body.get(name) is None:
            raise property_error("MissingRequiredProperty",
                                 "%s.%s" % (path, name) if path else name)


def _list(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, list):
        raise _invalid(path, body, "expected a JSON array")
    if rule.maximum is not None and len(body) > rule.maximum:
        raise _invalid(path, None, "at most %d items, got %d" % (rule.maximum, len(body)))
    assert rule.item is not None
    for index, item in enumerate(body):
        check(item, rule.item, "%s[%d]" % (path, index))


def _string(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, str):
        raise _invalid(path, body, "expected a string")
    if rule.max_length is not None and len(body) > rule.max_length:
        raise _invalid(path, body, "longer than %d characters" % rule.max_length)
    if rule.pattern is not None and not rule.pattern.match(body):
        raise _invalid(path, body, "1 to 64 letters, digits, '-' and '_'")


def _integer(body: Any, rule: Field, path: str) -> None:
    if isinstance(body, bool) or not isinstance(body, int):
        raise _invalid(path, body, "expected a whole number")
    if (rule.minimum is not None and body < rule.minimum) or \
            (rule.maximum is not None and body > rule.maximum):
        raise _invalid(path, body, "outside %s..%s" % (
            "" if rule.minimum is None else rule.minimum,
            "" if rule.maximum is None else rule.maximum))


def _boolean(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, bool):
        raise _invalid(path, body, "expected true or false")


def _duration(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, str) or duration_seconds(body) is None:
        raise _invalid(path, body, "expected an ISO 8601 duration such as PT10M")


def _enum(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, str) or body.lower() not in rule.choices:
        raise _invalid(path, body, "one of %s" % ", ".join(rule.choices))


def _any_object(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, dict):
        raise _invalid(path, body, "expected a JSON object")


def _map(body: Any, rule: Field, path: str) -> None:
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        raise _invalid(path, body, "expected an object of strings")


_CHECKS = {"object": _object, "list": _list, "str": _string, "int": _integer,
           "bool": _boolean, "duration": _duration, "enum": _enum,
           "object-any": _any_object, "map": _map}


def _invalid(path: str, value: Any, reason: str) -> BatchError:
    shown = value if value is None or len(repr(value)) <= 200 else repr(value)[:200]
    return property_error("InvalidPropertyValue", path, shown, reason)
