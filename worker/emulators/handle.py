"""A test-friendly handle on a running EmulatorSet: seed data, inject faults, read counters,
shape the network.

The pytest fixtures of ``worker.testing`` hand this out. Seeding goes straight into the
emulators' stores (no HTTP, no tokens), so arranging a test costs nothing and does not show
up in the request counters; the code under test still talks to the emulators only over
HTTPS with real tokens. ``service_client``/``secret_client``/``credential`` build real SDK
clients with fast retries; they read ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` from the
process environment, so use them under the ``emulator_environ`` fixture.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, Optional

from .config import READER_CLIENT_ID
from .emulators import EmulatorSet
from .faults import Fault
from .lake_store import Conditions


class EmulatorHandle:
    """What a test needs from the emulators, behind small methods."""

    def __init__(self, emulators: EmulatorSet) -> None:
        self.set = emulators

    # -- where ---------------------------------------------------------------------------

    @property
    def account_url(self) -> str:
        return self.set.account_url

    @property
    def vault_url(self) -> str:
        return self.set.vault_url

    @property
    def identity_url(self) -> str:
        return self.set.identity_url

    @property
    def ca_path(self) -> str:
        return self.set.ca_path

    @property
    def client_id(self) -> str:
        """The read-write identity."""
        return self.set.config.identities[0].client_id

    @property
    def reader_client_id(self) -> str:
        """A second identity that may read everything and write nothing."""
        return READER_CLIENT_ID

    @property
    def account_name(self) -> str:
        return self.set.config.account

    @property
    def account_key(self) -> str:
        """The storage account key (Shared Key and SAS)."""
        return self.set.config.account_key

    def environment(self, client_id: Optional[str] = None, filesystem: Optional[str] = None,
                    app_service: bool = False, vm: Optional[str] = None) -> Dict[str, str]:
        """WORKER_LAKE_URL, WORKER_VAULT_URL, AZURE_CLIENT_ID, ..._AUTHORITY_HOST, the CA
        bundle and the storage account's variables: a worker's environment, as on a node
        (IMDS only); ``app_service=True`` adds IDENTITY_ENDPOINT/IDENTITY_HEADER, as in the
        env file of ``emulate``; with ``vm``, the identity endpoint of that VM."""
        return self.set.environment(client_id, filesystem, app_service, vm)

    # -- data ------------------------------------------------------------------------------

    def new_filesystem(self, prefix: str = "test") -> str:
        """Create a file system with a unique name and return the name."""
        name = "%s-%s" % (prefix, uuid.uuid4().hex[:12])
        self.set.lake_app.store.create_filesystem(name, {})
        return name

    def delete_filesystem(self, name: str) -> None:
        self.set.lake_app.store.delete_filesystem(name)

    def seed_file(self, filesystem: str, path: str, data: bytes,
                  metadata: Optional[Dict[str, str]] = None) -> None:
        """Create (or replace) a flushed file, with its parent directories."""
        store = self.set.lake_app.store
        store.create(filesystem, path, False, Conditions(), dict(metadata or {}), {})
        if data:
            store.append(filesystem, path, 0, bytes(data))
        store.flush(filesystem, path, len(data), Conditions(), {})

    def read_file(self, filesystem: str, path: str) -> bytes:
        """The flushed bytes of a file (FileNotFoundError when it is missing)."""
        from .lake_store import LakeError

        try:
            return self.set.lake_app.store.get(filesystem, path).data
        except LakeError as e:
            raise FileNotFoundError("%s/%s" % (filesystem, path)) from e

    def exists(self, filesystem: str, path: str) -> bool:
        fs = self.set.lake_app.store.filesystems.get(filesystem)
        return fs is not None and path in fs.paths

    def seed_secret(self, name: str, value: str, content_type: Optional[str] = None) -> str:
        """Set a secret (a new version); returns the version id."""
        return self.set.vault_app.store.set(name, value, content_type)["version"]

    def get_secret(self, name: str) -> str:
        return self.set.vault_app.store.get(name)["value"]

    def load_directory(self, filesystem: str, directory: str) -> int:
        """Copy the files below a local folder into ``filesystem``; returns how many."""
        return self.set.load_directory(filesystem, directory)

    def reset_state(self) -> None:
        """Secrets back to the configured ones, configured file systems empty, no faults,
        zeroed counters, no network model: what the ``emulators`` fixture does per test."""
        self.set.reset_seeded_state()
        self.clear_faults()
        self.reset_counts()
        self.network()
        self.lake_behaviour()

    def lake_behaviour(self, rename_conflict_first: bool = False,
                       flat_namespace: bool = False) -> None:
        """How the lake answers where accounts or Azure's behaviour differ (reset per test):
        ``rename_conflict_first``: a conditional rename whose source is gone and whose
        destination exists answers 409 PathAlreadyExists, not 404 (a retried rename);
        ``flat_namespace``: the account reports no hierarchical namespace."""
        self.set.lake_app.store.rename_conflict_first = rename_conflict_first
        self.set.lake_app.hierarchical_namespace = not flat_namespace

    # -- the network model -------------------------------------------------------------------

    def network(self, link_mbps: Optional[float] = None, latency_ms: float = 0.0) -> None:
        """Shape the lake's and vault's network from now on: ``link_mbps`` is one link shared
        by every connection (None: unlimited), ``latency_ms`` a wait before each answer.
        ``network()`` removes the model; the ``emulators`` fixture does after each test."""
        self.set.network.configure(link_mbps, latency_ms)

    # -- faults and counters -------------------------------------------------------------------

    def fault(self, service: str = "*", operation: str = "*", kind: str = "status",
              **options: Any) -> Fault:
        """Add a fault rule (see ``worker.emulators.faults.Faults.add`` for options)."""
        return self.set.faults.add(service, operation, kind, **options)

    def clear_faults(self) -> None:
        self.set.faults.clear()

    def counts(self, service: Optional[str] = None) -> Dict[str, int]:
        """Requests served: ``{"lake.read": 2, ...}``, or ``{"read": 2}`` for one service."""
        return self.set.counters.snapshot(service)

    def reset_counts(self) -> None:
        self.set.counters.reset()
        if self.set.identity_app.throttle is not None:
            self.set.identity_app.throttle.reset()

    def identity_stats(self) -> Dict[str, Dict[str, int]]:
        """Token requests per VM, ``{"served": n, "throttled": m}`` (with limits only)."""
        return self.set.identity_stats()

    # -- real SDK clients with fast retries -------------------------------------------------------

    def credential(self, client_id: Optional[str] = None) -> Any:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id or self.client_id, retry_total=2,
                                         retry_backoff_factor=0.01)

    def service_client(self, client_id: Optional[str] = None, **options: Any) -> Any:
        from azure.storage.filedatalake import DataLakeServiceClient

        options.setdefault("retry_total", 0)
        options.setdefault("connection_verify", self.ca_path)
        return DataLakeServiceClient(self.account_url, credential=self.credential(client_id),
                                     **options)

    def secret_client(self, client_id: Optional[str] = None, **options: Any) -> Any:
        from azure.keyvault.secrets import SecretClient

        options.setdefault("retry_total", 0)
        options.setdefault("connection_verify", self.ca_path)
        return SecretClient(self.vault_url, self.credential(client_id),
                            verify_challenge_resource=False, **options)
