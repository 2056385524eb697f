"""The Batch account inside the emulator set: its data-plane server (the account URL), run
beside the lake, the vault and the identity endpoint, with their CA and token issuer.

Each node's processes get what its VM would give them: the emulated identity endpoint as
their managed-identity endpoint and the emulators' CA bundle as the CAs they trust. The
account's pools, jobs and tasks live in memory; the nodes' folders and the packages' zips
under ``<data>/batch`` (``--data``) or a temporary folder, emptied at each start.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..server import EmulatorServer
from .app import BatchApp
from .service import BatchService, BatchSettings

if TYPE_CHECKING:
    from ..emulators import EmulatorSet

DEFAULT_PORT = 10017


class BatchHost:
    """The account's service and server; started and stopped by the emulator set."""

    def __init__(self, settings: BatchSettings, port: int = 0,
                 preferred_port: int = DEFAULT_PORT) -> None:
        self.settings = settings
        self.port = port
        self.preferred_port = preferred_port
        self.service: Optional[BatchService] = None
        self.server: Optional[EmulatorServer] = None
        self.notes: List[str] = []
        self._owner: Optional["EmulatorSet"] = None

    def start(self, owner: "EmulatorSet", issuer: Any, tls: Any, folder: str) -> None:
        self._owner = owner
        root = Path(folder) / "batch"
        shutil.rmtree(str(root / "nodes"), ignore_errors=True)  # nodes do not outlive us
        self.service = BatchService(self.settings, issuer, root, machine=self._machine)
        shared = {"faults": owner.faults, "counters": owner.counters,
                  "on_request": owner.on_request}
        self.server = self._serve(BatchApp(self.service), tls, shared)
        self.service.url = self.server.base_url
        self.service.start()

    def _serve(self, app: Any, tls: Any, shared: Dict[str, Any]) -> EmulatorServer:
        if self.port or not self.preferred_port:
            return EmulatorServer(app, self.port, tls, **shared).start()
        try:
            return EmulatorServer(app, self.preferred_port, tls, **shared).start()
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
        server = EmulatorServer(app, 0, tls, **shared).start()
        self.notes.append("port %d for the batch account is taken; it listens on %d instead"
                          % (self.preferred_port, server.port))
        return server

    def _machine(self, node_id: str) -> Dict[str, str]:
        owner = self._owner
        assert owner is not None
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": owner.identity_url,
                "REQUESTS_CA_BUNDLE": owner.bundle_path}

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None, "start() first"
        return self.server.base_url

    @property
    def bound_port(self) -> int:
        assert self.server is not None, "start() first"
        return self.server.port

    def environment(self) -> Dict[str, str]:
        """What ``az batch`` and the SDKs read to reach the account with its key."""
        assert self.service is not None, "start() first"
        return {"AZURE_BATCH_ENDPOINT": self.url, "AZURE_BATCH_ACCOUNT": self.service.account,
                "AZURE_BATCH_ACCESS_KEY": self.service.key}

    def ports(self) -> Tuple[int, ...]:
        return (self.bound_port,)
