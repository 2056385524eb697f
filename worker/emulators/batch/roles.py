"""Who may do what on the Batch account when they sign in with Entra ID: Azure's role
assignments, as Azure RBAC checks them. Shared Key is not checked (the key gives full
permission to the account, as on Azure).

Each request needs one Azure *action* (the account plane's, and the data plane's pools and
applications: ``Microsoft.Batch/batchAccounts/pools/write``, ...) or *data action* (the data
plane's jobs and tasks: ``Microsoft.Batch/batchAccounts/jobs/read``, ...). A role grants
the actions and data actions its definition lists (``*`` matches anything, ``/`` included),
as Azure's built-in roles do ("Role-based access control for Azure Batch service"): Owner
and Contributor grant every action but no data action, so they cannot submit jobs.

Identities hold the roles the emulators' configuration gives them (an identity's ``batch``
list of role names); an identity the configuration does not say holds "Azure Batch Account
Contributor" (everything). Refusals are Azure's: the data plane's 403
``AuthorizationFailure`` and the account plane's 403 ``AuthorizationFailed`` naming the
client, the action and the scope.
"""

from __future__ import annotations

import fnmatch
from typing import Dict, Iterable, Mapping, NamedTuple, Optional, Tuple


class Role(NamedTuple):
    actions: Tuple[str, ...]
    data_actions: Tuple[str, ...] = ()


BATCH = "Microsoft.Batch/batchAccounts"
#: Azure's built-in roles that matter on a Batch account (their actions and data actions).
ROLES: Dict[str, Role] = {
    "Owner": Role(("*",)),
    "Contributor": Role(("*",)),
    "Reader": Role(("*/read",)),
    "Azure Batch Account Contributor": Role((BATCH + "/*",), (BATCH + "/*",)),
    "Azure Batch Account Reader": Role((BATCH + "/read", BATCH + "/*/read"),
                                       (BATCH + "/*/read",)),
    "Azure Batch Data Contributor": Role(
        (BATCH + "/read", BATCH + "/applications/*", BATCH + "/certificates/*",
         BATCH + "/pools/*", BATCH + "/poolOperationResults/*"),
        (BATCH + "/jobSchedules/*", BATCH + "/jobs/*")),
    "Azure Batch Job Submitter": Role(
        (BATCH + "/applications/read", BATCH + "/applications/versions/read",
         BATCH + "/pools/read"),
        (BATCH + "/jobSchedules/*", BATCH + "/jobs/*")),
}
DEFAULT_ROLES = ("Azure Batch Account Contributor",)


def unknown_roles(names: Iterable[str]) -> Tuple[str, ...]:
    """The names that are none of :data:`ROLES` (a configuration's mistakes)."""
    return tuple(n for n in names if n not in ROLES)


def grants(roles: Iterable[str], action: str, data: bool) -> bool:
    """Whether any of ``roles`` grants ``action`` (a data action when ``data``)."""
    wanted = action.lower()
    for name in roles:
        role = ROLES[name]
        patterns = role.data_actions if data else role.actions
        if any(fnmatch.fnmatchcase(wanted, p.lower()) for p in patterns):
            return True
    return False


class RoleAssignments:
    """The roles each identity (by client id) holds on the account: the configuration's,
    changed for a test by :meth:`assign` and back with :meth:`reset`."""

    def __init__(self, configured: Optional[Mapping[str, Tuple[str, ...]]] = None) -> None:
        self.configured = {k.lower(): tuple(v) for k, v in (configured or {}).items()}
        self.assigned = dict(self.configured)

    def roles_of(self, client_id: str) -> Tuple[str, ...]:
        return self.assigned.get(client_id.lower(), DEFAULT_ROLES)

    def assign(self, client_id: str, roles: Iterable[str]) -> None:
        roles = tuple(roles)
        unknown = unknown_roles(roles)
        if unknown:
            raise ValueError("unknown role %r: the roles are %s" % (unknown[0],
                                                                    ", ".join(ROLES)))
        self.assigned[client_id.lower()] = roles

    def reset(self) -> None:
        self.assigned = dict(self.configured)

    def allows(self, client_id: str, action: str, data: bool) -> bool:
        return grants(self.roles_of(client_id), action, data)


# -- the action each request needs ------------------------------------------------------------

#: The data plane's operation kinds (``pool.add`` -> ``pool``) and what they are part of.
_DATA_PLANE = {"application": ("applications", False), "pool": ("pools", False),
               "node": ("pools", False), "emulator": ("pools", False),
               "job": ("jobs", True), "task": ("jobs", True)}
#: The account plane's operations that are actions of their own.
_ARM_ACTIONS = {"account.get": "read", "account.listkeys": "listKeys/action",
                "package.activate": "applications/versions/activate/action",
                "pool.disableautoscale": "pools/disableAutoScale/action",
                "pool.stopresize": "pools/stopResize/action"}
_ARM_KINDS = {"application": "applications", "package": "applications/versions",
              "pool": "pools"}


def _verb(method: str, operation: str) -> str:
    if method in ("GET", "HEAD"):
        return "read"
    return "delete" if operation.endswith(".delete") else "write"


def data_plane_action(operation: str, method: str) -> Tuple[str, bool]:
    """(action, whether it is a data action) of a data-plane request."""
    kind, _, name = operation.partition(".")
    if kind == "file":  # a node's files are the pool's, a task's the job's
        kind = "node" if name in ("listnode", "node") else "task"
        method = method if method in ("GET", "HEAD") else "POST"  # deleting a file writes
    resource, data = _DATA_PLANE.get(kind, ("pools", False))
    return "%s/%s/%s" % (BATCH, resource, _verb(method, operation)), data


def arm_action(operation: str, method: str) -> str:
    """The action of an account-plane request."""
    if operation in _ARM_ACTIONS:
        return "%s/%s" % (BATCH, _ARM_ACTIONS[operation])
    kind = _ARM_KINDS.get(operation.partition(".")[0], "")
    return "%s/%s%s" % (BATCH, kind + "/" if kind else "", _verb(method, operation))
