"""Why a package could not be built: one error class per cause, each with its exit code.

| code | error             | meaning                                                         |
|------|-------------------|-----------------------------------------------------------------|
| 2    | PackageUsageError | a bad option (name, version, Python), or no such project folder |
| 10   | NoHandlerError    | the project holds no Python module                              |
| 11   | NoWheelError      | a requirement has no wheel for the node's Python and platform   |
| 12   | UnresolvableError | the requirements cannot be resolved (unknown, or in conflict    |
|      |                   | with the worker's pins)                                         |
| 13   | SecretFileError   | a file in the project looks like a secret                       |
| 14   | OutputError       | the output path cannot be written                               |
| 15   | DownloadError     | the index or a wheel could not be fetched, or a hash mismatched |
| 16   | ToolError         | a build tool (uv, pip) or the worker's checkout is missing, or  |
|      |                   | a build step failed                                             |
| 17   | MissingImportError| a module imports what nothing in the package provides (not the  |
|      |                   | standard library, the project, the worker's lock or its         |
|      |                   | requirements)                                                   |

``python -m worker spec`` and ``local-batch`` (their documents and options):

| code | error             | meaning                                                         |
|------|-------------------|-----------------------------------------------------------------|
| 2    | SpecError         | a malformed spec file, spec option or document                  |
| 30   | NoItemsError      | a fan-out whose item source gives no item                       |
| 31   | TaskIdError       | a task id (or job or pool id) Batch would refuse, or a duplicate |
| 32   | DependencyCycle   | tasks that depend on each other in a cycle                      |
| 33   | MissingDependency | a task depends on a task id the job does not have               |
| 34   | TaskFailed        | local-batch: a task failed, was blocked, or never ran           |
| 35   | StartTaskFailed   | local-batch: the start task failed (the node is unusable)       |

``deploy``, ``status``, ``logs``, ``results``, ``rerun`` (``worker/deploy/cloud/``): every
failure is one line with the service's error code and message, its request id and the
client request id, and the fix.

| code | error             | meaning                                                         |
|------|-------------------|-----------------------------------------------------------------|
| 2    | CloudError        | what a person fixes: no sign-in, a missing role, a wrong        |
|      |                   | account, a quota, an application or job that does not exist,    |
|      |                   | a conflict with what is there (a package version with other     |
|      |                   | bytes, a pool key Azure cannot change, a task id with another   |
|      |                   | definition), tasks the service refused; Python < 3.9 or no SDK  |
| 3    | CloudTransient    | the service kept failing (5xx, throttling, connections) after   |
|      |                   | the retries: run the command again                              |
| 40   | (status)          | the job's tasks ended and some failed (or are blocked by them)  |
| 41   | (status)          | the job is still running (``status`` without ``--watch``)       |
"""

from __future__ import annotations

from ..errors import RETRYABLE, USAGE, WorkerError

#: ``status``: every task succeeded (0), some failed, still running.
STATUS_FAILED = 40
STATUS_RUNNING = 41


class DeployError(WorkerError):
    """Base of the build-and-deploy errors; the message is one line."""

    exit_code = 16
    code = "package"


class PackageUsageError(DeployError):
    exit_code = USAGE
    code = "package.usage"


class NoHandlerError(DeployError):
    exit_code = 10
    code = "package.no_handler"


class NoWheelError(DeployError):
    exit_code = 11
    code = "package.no_wheel"


class UnresolvableError(DeployError):
    exit_code = 12
    code = "package.unresolvable"


class SecretFileError(DeployError):
    exit_code = 13
    code = "package.secret_file"


class OutputError(DeployError):
    exit_code = 14
    code = "package.output"


class DownloadError(DeployError):
    exit_code = 15
    code = "package.download"


class ToolError(DeployError):
    exit_code = 16
    code = "package.tool"


class MissingImportError(DeployError):
    exit_code = 17
    code = "package.missing_import"


class SpecError(DeployError):
    exit_code = USAGE
    code = "spec.usage"


class NoItemsError(DeployError):
    exit_code = 30
    code = "spec.no_items"


class TaskIdError(DeployError):
    exit_code = 31
    code = "spec.task_id"


class DependencyCycle(DeployError):
    exit_code = 32
    code = "localbatch.cycle"


class MissingDependency(DeployError):
    exit_code = 33
    code = "localbatch.missing_dependency"


class TaskFailed(DeployError):
    exit_code = 34
    code = "localbatch.task_failed"


class StartTaskFailed(DeployError):
    exit_code = 35
    code = "localbatch.start_task_failed"


class CloudError(DeployError):
    """A deploy-loop failure a person fixes (exit 2)."""

    exit_code = USAGE
    code = "deploy.cloud"


class AccessError(CloudError):
    code = "deploy.access"


class NotFoundError(CloudError):
    code = "deploy.not_found"


class QuotaError(CloudError):
    code = "deploy.quota"


class ConflictError(CloudError):
    code = "deploy.conflict"


class TaskAddError(CloudError):
    code = "deploy.task_add"


class CloudTransient(DeployError):
    """The service kept failing after the retries (exit 3): run the command again."""

    exit_code = RETRYABLE
    code = "deploy.transient"
