"""The Batch account inside the emulator set: its data-plane server (the account URL) and
its account-plane server (ARM), run beside the lake, the vault and the identity endpoint,
with their CA and token issuer. Application package zips are uploaded into the emulated
storage account, container ``batch-packages``.

Each node's processes get what its VM would give them: the emulated identity endpoint as
their managed-identity endpoint and the emulators' CA bundle as the CAs they trust. The
account's pools, jobs and tasks live in memory; the nodes' folders and the packages' zips
under ``<data>/batch`` (``--data``) or a temporary folder, emptied at each start.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..server import EmulatorServer, start_server
from .app import BatchApp
from .arm import ArmApp, PackageBlobs
from .roles import RoleAssignments
from .service import BatchService, BatchSettings

if TYPE_CHECKING:
    from ..emulators import EmulatorSet

DEFAULT_PORT = 10017
DEFAULT_ARM_PORT = 10018
CONTAINER = "batch-packages"
URL_LIFETIME = 4 * 3600.0  # how long a storageUrl's SAS is good for (Azure's: 4 hours)
URL_SKEW = 300.0  # its start, before now (Azure's starts 5 minutes before)


class LakePackageBlobs(PackageBlobs):
    """Package zips in the emulated storage account: ``batch-packages/<app>/<version>.zip``."""

    def __init__(self, owner: "EmulatorSet") -> None:
        self.owner = owner
        try:
            owner.lake_app.store.create_filesystem(CONTAINER, {})
        except Exception:  # noqa: BLE001 - kept from an earlier run under --data
            pass

    def _path(self, app: str, version: str) -> str:
        return "%s/%s.zip" % (app.lower(), version)

    def url(self, app: str, version: str) -> Tuple[str, float]:
        expiry = time.time() + URL_LIFETIME
        url = "%s/%s/%s" % (self.owner.account_url, CONTAINER, self._path(app, version))
        return url + _sas(self.owner, self._path(app, version), expiry), expiry

    def read(self, app: str, version: str) -> Optional[bytes]:
        from ..lake_store import LakeError

        try:
            return bytes(self.owner.lake_app.store.get(CONTAINER, self._path(app, version)).data)
        except LakeError:
            return None


def _sas(owner: "EmulatorSet", path: str, expiry: float) -> str:
    """The blob's SAS as Azure's storageUrl carries it: read and write on that blob
    (``sr=b&sp=rw``), from five minutes ago for four hours."""
    from ..sas import sign

    return "?" + sign(owner.config.account, owner.config.account_key, CONTAINER, path,
                      permissions="rw", expiry=expiry, start=expiry - URL_LIFETIME - URL_SKEW)


class BatchHost:
    """The account's service and server; started and stopped by the emulator set."""

    def __init__(self, settings: BatchSettings, port: int = 0,
                 preferred_port: int = DEFAULT_PORT, arm_port: int = 0,
                 preferred_arm_port: int = DEFAULT_ARM_PORT) -> None:
        self.settings = settings
        self.ports_wanted = {"batch account": (port, preferred_port),
                             "batch account plane": (arm_port, preferred_arm_port)}
        self.service: Optional[BatchService] = None
        self.server: Optional[EmulatorServer] = None
        self.arm: Optional[EmulatorServer] = None
        self.notes: List[str] = []
        self._owner: Optional["EmulatorSet"] = None

    def start(self, owner: "EmulatorSet", issuer: Any, tls: Any, folder: str) -> None:
        self._owner = owner
        root = Path(folder) / "batch"
        shutil.rmtree(str(root / "nodes"), ignore_errors=True)  # nodes do not outlive us
        self.service = BatchService(self.settings, issuer, root, machine=self._machine)
        self.service.roles = RoleAssignments({i.client_id: i.batch_roles for i in
                                              owner.config.identities
                                              if i.batch_roles is not None})
        shared = {"faults": owner.faults, "counters": owner.counters,
                  "on_request": owner.on_request}
        self.server = self._serve("batch account", BatchApp(self.service, owner.faults), tls,
                                  shared)
        self.service.url = self.server.base_url
        self.arm = self._serve("batch account plane",
                               ArmApp(self.service, LakePackageBlobs(owner)), tls, shared)
        self.service.start()

    def _serve(self, what: str, app: Any, tls: Any, shared: Dict[str, Any]) -> EmulatorServer:
        port, preferred = self.ports_wanted[what]
        return start_server(app, port, preferred, tls, what, self.notes, **shared)

    def _machine(self, node_id: str) -> Dict[str, str]:
        """What a node's VM gives its processes: its identity endpoint (the node's own,
        ``.../vms/<node>``, with a VM's limits, where the identity endpoint has them) and
        the CA bundle."""
        owner = self._owner
        assert owner is not None
        per_vm = getattr(owner, "vm_identity_url", None)
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": per_vm(node_id) if per_vm is not None
                else owner.identity_url,
                "REQUESTS_CA_BUNDLE": owner.bundle_path}

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
        for server in (self.server, self.arm):
            if server is not None:
                server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None, "start() first"
        return self.server.base_url

    @property
    def bound_port(self) -> int:
        assert self.server is not None, "start() first"
        return self.server.port

    @property
    def arm_url(self) -> str:
        assert self.arm is not None, "start() first"
        return self.arm.base_url

    def environment(self) -> Dict[str, str]:
        """What ``az batch`` and the SDKs read to reach the account with its key, and what
        an account-plane client needs (its endpoint, subscription and resource group)."""
        assert self.service is not None, "start() first"
        settings = self.service.settings
        return {"AZURE_BATCH_ENDPOINT": self.url, "AZURE_BATCH_ACCOUNT": self.service.account,
                "AZURE_BATCH_ACCESS_KEY": self.service.key, "AZURE_ARM_ENDPOINT": self.arm_url,
                "AZURE_SUBSCRIPTION_ID": settings.subscription,
                "AZURE_RESOURCE_GROUP": settings.resource_group}
