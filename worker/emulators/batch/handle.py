"""A test's handle on the local Batch service (the pytest fixtures of ``worker.testing``):
where it is, a real azure-batch client for it, application packages, preemption, the clock,
quotas and role assignments; ``reset`` gives the next test an empty account."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

if TYPE_CHECKING:
    from ..emulators import EmulatorSet
    from .service import BatchService

DEFAULTS = {"time_scale": 60.0, "preempt_rate": 0.0, "recovery": 120.0, "node_start": 0.0,
            "kill_after": 30.0, "dedicated_core_quota": 1000, "low_priority_core_quota": 1000,
            "pool_quota": 100}


class BatchHandle:
    """What a test needs from the local Batch account."""

    def __init__(self, emulators: "EmulatorSet") -> None:
        assert emulators.batch is not None, "an EmulatorSet started with batch=BatchHost(...)"
        self.set = emulators

    @property
    def service(self) -> "BatchService":
        service = self.set.batch.service
        assert service is not None
        return service

    @property
    def endpoint(self) -> str:
        return self.set.batch.url

    @property
    def arm_endpoint(self) -> str:
        return self.set.batch.arm_url

    @property
    def account(self) -> str:
        return self.service.account

    @property
    def key(self) -> str:
        return self.service.key

    @property
    def ca_path(self) -> str:
        return self.set.ca_path

    def environment(self) -> Dict[str, str]:
        """The emulators' variables, AZURE_BATCH_* included."""
        return self.set.environment()

    def client(self, **options: Any) -> Any:
        """A real azure-batch client with the account key: 15.x's ``BatchClient`` where it is
        installed (Python >= 3.9), else 14.x's ``BatchServiceClient``."""
        try:
            from azure.batch import BatchClient
            from azure.core.credentials import AzureNamedKeyCredential
        except ImportError:
            from azure.batch import BatchServiceClient, batch_auth

            credentials = batch_auth.SharedKeyCredentials(self.account, self.key)
            client = BatchServiceClient(credentials, batch_url=self.endpoint, **options)
            client.config.connection.verify = self.ca_path
            return client
        options.setdefault("connection_verify", self.ca_path)
        return BatchClient(self.endpoint, AzureNamedKeyCredential(self.account, self.key),
                           **options)

    def management_client(self, client_id: Optional[str] = None, **options: Any) -> Any:
        """A real azure-mgmt-batch client for the account plane, authenticated with
        azure-identity's ManagedIdentityCredential as ``client_id`` (default: the env's
        AZURE_CLIENT_ID): the process's environment must point it at this set's identity
        endpoint (AZURE_POD_IDENTITY_AUTHORITY_HOST of ``environment()``, e.g. with
        ``monkeypatch.setenv``), which azure-identity reads when it asks."""
        from azure.identity import ManagedIdentityCredential
        from azure.mgmt.batch import BatchManagementClient

        env = self.environment()
        options.setdefault("connection_verify", self.ca_path)
        credential = ManagedIdentityCredential(client_id=client_id or env["AZURE_CLIENT_ID"])
        return BatchManagementClient(credential, env["AZURE_SUBSCRIPTION_ID"],
                                     base_url=self.arm_endpoint, **options)

    def add_package(self, archive: Path, app: Optional[str] = None,
                    version: Optional[str] = None) -> Tuple[str, str]:
        """An active application package version (its application's default)."""
        with self.service.lock:
            return self.service.apps.add_zip(Path(archive), app, version)

    def preempt(self, node_id: str) -> int:
        """Preempt a spot node; how many running tasks were requeued."""
        with self.service.lock:
            for pool in self.service.pools.values():
                node = pool.nodes.get(node_id)
                if node is not None:
                    running = len(node.host.running)
                    node.preempt()
                    self.service.wake()
                    return running
        raise KeyError("no node %s" % node_id)

    def assign_roles(self, client_id: str, *roles: str) -> None:
        """The Azure roles the identity holds on the account from now on (none: it may do
        nothing with a token); ``reset`` goes back to the configuration's."""
        with self.service.lock:
            self.service.roles.assign(client_id, roles)

    def configure(self, **settings: float) -> None:
        """Change the clock's scale (``time_scale``), ``preempt_rate``, ``recovery``,
        ``node_start``, ``kill_after`` or the account's quotas (``dedicated_core_quota``,
        ``low_priority_core_quota``, ``pool_quota``) for what follows."""
        service = self.service
        with service.lock:
            unknown = set(settings) - set(DEFAULTS)
            if unknown:
                raise TypeError("unknown settings: %s" % ", ".join(sorted(unknown)))
            if "time_scale" in settings:
                service.clock.rescale(settings["time_scale"])
            service.settings = service.settings._replace(**settings)
            for pool in service.pools.values():
                pool.scheduler.kill_after = service.settings.kill_after
            service.wake()

    def reset(self) -> None:
        """No pools, jobs or applications, no fault rules; the configuration's role
        assignments; the default settings."""
        self.set.faults.clear()
        service = self.service
        with service.lock:
            service.roles.reset()
            for job in list(service.jobs.values()):
                service.delete_job(job)
            for pool in list(service.pools.values()):
                service.delete_pool(pool)
            service.apps.apps.clear()
        self.configure(**DEFAULTS)
