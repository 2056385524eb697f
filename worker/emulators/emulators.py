"""The emulator set: IMDS, the lake and the vault running together in one process.

:class:`EmulatorSet` starts the three servers in background threads, shares one token
issuer, one fault plan and one set of counters between them, seeds the configured file
systems and secrets, and knows the environment a worker needs to reach them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, Optional

from .config import EmulatorConfig, default_config
from .counters import Counters
from .faults import Faults
from .identity import IdentityApp
from .lake import LakeApp
from .lake_disk import Disk
from .lake_store import DEFAULT_PAGE, LakeError, LakeStore
from .server import EmulatorServer
from .tls import make_tls
from .tokens import TokenIssuer
from .vault import VaultApp
from .vault_store import SecretStore

# Variables that would send azure-identity somewhere other than our IMDS.
CLEARED_VARIABLES = (
    "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
    "MSI_ENDPOINT", "MSI_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST",
    "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME", "AZURE_PASSWORD", "SSL_CERT_FILE", "CURL_CA_BUNDLE",
)


def _signing_key(data_dir: Optional[str]) -> Optional[bytes]:
    """The token key: kept under ``--data`` so tokens cached by clients survive restarts."""
    if data_dir is None:
        return None
    path = os.path.join(data_dir, "token.key")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(path, 0o600)
    with open(path, "rb") as f:
        return f.read()


class EmulatorSet:
    """IMDS + lake + vault; ``start()``/``stop()`` or use as a context manager."""

    def __init__(self, config: Optional[EmulatorConfig] = None, data_dir: Optional[str] = None,
                 lake_port: int = 0, vault_port: int = 0, identity_port: int = 0,
                 seed: Optional[int] = None, delete_page_size: int = DEFAULT_PAGE) -> None:
        self.config = config or default_config()
        self.data_dir = data_dir
        self.ports = (lake_port, vault_port, identity_port)
        self.faults = Faults(seed)
        self.counters = Counters()
        self.delete_page_size = delete_page_size
        self._tmp: Optional[str] = None
        self.lake: Optional[EmulatorServer] = None
        self.vault: Optional[EmulatorServer] = None
        self.identity: Optional[EmulatorServer] = None

    def start(self) -> EmulatorSet:
        """Generate TLS material, open the stores, start serving, seed the configuration."""
        if self.data_dir:
            os.makedirs(self.data_dir, exist_ok=True)
            tls = make_tls(os.path.join(self.data_dir, "tls"), persist=True)
        else:
            self._tmp = tempfile.mkdtemp(prefix="worker-emulators-")
            tls = make_tls(self._tmp)
        self.ca_path = tls.ca_path
        issuer = TokenIssuer(_signing_key(self.data_dir))
        self.lake_app = LakeApp(self.config, issuer, self._lake_store())
        self.vault_app = VaultApp(self.config, issuer, SecretStore(
            os.path.join(self.data_dir, "vault.json") if self.data_dir else None))
        shared = {"faults": self.faults, "counters": self.counters}
        self.lake = EmulatorServer(self.lake_app, self.ports[0], tls.context, **shared).start()
        self.vault = EmulatorServer(self.vault_app, self.ports[1], tls.context, **shared).start()
        self.identity = EmulatorServer(IdentityApp(self.config, issuer), self.ports[2],
                                       None, **shared).start()
        self.lake_app.base_url = self.lake.base_url
        self._seed()
        return self

    def _lake_store(self) -> LakeStore:
        disk = Disk(os.path.join(self.data_dir, "lake")) if self.data_dir else None
        return LakeStore(disk, delete_page_size=self.delete_page_size)

    def _seed(self) -> None:
        for name in self.config.filesystems:
            try:
                self.lake_app.store.create_filesystem(name, {})
            except LakeError:
                pass  # kept from an earlier run under --data
        for name, value in self.config.secrets:
            self.vault_app.store.set(name, value)

    def stop(self) -> None:
        """Stop the servers and remove the temporary CA (kept under ``--data``)."""
        for server in (self.lake, self.vault, self.identity):
            if server is not None:
                server.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> EmulatorSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where things are --------------------------------------------------------------------

    @property
    def account_url(self) -> str:
        """``https://127.0.0.1:PORT/ACCOUNT``: for DataLakeServiceClient."""
        assert self.lake is not None, "start() first"
        return "%s/%s" % (self.lake.base_url, self.config.account)

    @property
    def vault_url(self) -> str:
        assert self.vault is not None, "start() first"
        return self.vault.base_url

    @property
    def identity_url(self) -> str:
        """``http://127.0.0.1:PORT``: the value of AZURE_POD_IDENTITY_AUTHORITY_HOST."""
        assert self.identity is not None, "start() first"
        return self.identity.base_url

    def environment(self, client_id: Optional[str] = None,
                    filesystem: Optional[str] = None) -> Dict[str, str]:
        """The variables a worker (or any Azure SDK user) needs to reach these emulators."""
        if filesystem is None:
            filesystem = self.config.filesystems[0] if self.config.filesystems else "data"
        if client_id is None:
            client_id = self.config.identities[0].client_id if self.config.identities else ""
        return {
            "WORKER_LAKE_URL": "%s/%s" % (self.account_url, filesystem),
            "WORKER_VAULT_URL": self.vault_url,
            "AZURE_CLIENT_ID": client_id,
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.identity_url,
            "REQUESTS_CA_BUNDLE": self.ca_path,
        }
