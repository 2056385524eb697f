"""The emulator set: IMDS, the lake and the vault running together in one process.

:class:`EmulatorSet` starts the three servers in background threads, shares one token
issuer, one fault plan, one set of counters and one network model between them, seeds the
configured file systems and secrets, and knows the environment a worker needs to reach them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .config import EmulatorConfig, default_config
from .counters import Counters
from .faults import Faults
from .identity import IdentityApp
from .identity_limits import Limits, PerVm
from .lake import LakeApp
from .lake_disk import Disk
from .lake_store import DEFAULT_PAGE, LakeError, LakeStore
from .network import Network
from .seeding import load_directory
from .server import EmulatorServer, RequestRecord, start_server
from .tls import make_tls, write_bundle
from .tokens import TokenIssuer
from .vault import VaultApp
from .vault_store import SecretStore

SERVICES = ("lake", "vault", "identity")

#: App Service's managed-identity variables. azure-identity prefers them to
#: AZURE_POD_IDENTITY_AUTHORITY_HOST; a Batch node has IMDS only, so a node's environment
#: (the test fixtures', local-batch's) leaves them out.
APP_SERVICE_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")

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


def _identity_header(data_dir: Optional[str]) -> str:
    """App Service's header secret: kept under ``--data`` as the ports and the CA are, so a
    shell that loaded the env file keeps working across restarts."""
    if data_dir is None:
        return secrets.token_urlsafe(24)
    path = os.path.join(data_dir, "identity_header")
    if not os.path.exists(path):
        with open(path, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(24))
        os.chmod(path, 0o600)
    with open(path, encoding="ascii") as f:
        return f.read().strip()


class EmulatorSet:
    """IMDS + lake + vault; ``start()``/``stop()`` or use as a context manager.

    The CA: under ``data_dir`` when given, else kept in ``ca_dir`` when given (reused by
    every run given the same folder: ``emulate`` passes a per-user one, so the bundle its
    env file names outlives it), else a temporary one removed at ``stop()``.
    Ports: a nonzero ``*_port`` must be free; for a zero one the matching entry of
    ``preferred_ports`` (lake, vault, identity) is tried first, then any free port (each
    fallback is described in ``notes``). ``link_mbps`` and ``latency_ms`` set the network
    model of the lake and the vault (``network.py``; change it later with
    ``network.configure``). ``identity_limits`` throttles the identity endpoint per VM as
    Azure does (``identity_limits.py``; None: unlimited). ``on_request`` is called with a
    ``RequestRecord`` for each request served (from the servers' threads).
    """

    def __init__(self, config: Optional[EmulatorConfig] = None, data_dir: Optional[str] = None,
                 lake_port: int = 0, vault_port: int = 0, identity_port: int = 0,
                 seed: Optional[int] = None, delete_page_size: int = DEFAULT_PAGE,
                 link_mbps: Optional[float] = None, latency_ms: float = 0.0,
                 preferred_ports: Optional[Sequence[int]] = None,
                 on_request: Optional[Callable[[RequestRecord], None]] = None,
                 batch: Optional[Any] = None, ca_dir: Optional[str] = None,
                 identity_limits: Optional[Limits] = None) -> None:
        self.config = config or default_config()
        self.data_dir = data_dir
        self.ca_dir = ca_dir
        self.ports = (lake_port, vault_port, identity_port)
        self.preferred_ports = tuple(preferred_ports or (0, 0, 0))
        self.notes: List[str] = []
        self.faults = Faults(seed)
        self.counters = Counters()
        self.network = Network(link_mbps, latency_ms)
        self.on_request = on_request
        self.delete_page_size = delete_page_size
        self.identity_limits = identity_limits
        self._tmp: Optional[str] = None
        self.lake: Optional[EmulatorServer] = None
        self.vault: Optional[EmulatorServer] = None
        self.identity: Optional[EmulatorServer] = None
        self.identity_header = ""  # App Service's X-IDENTITY-HEADER secret, set at start
        self.batch = batch  # a batch.hosting.BatchHost: the local Batch account, or None

    def start(self) -> EmulatorSet:
        """Generate TLS material, open the stores, start serving, seed the configuration."""
        if self.data_dir:
            os.makedirs(self.data_dir, exist_ok=True)
            tls = make_tls(os.path.join(self.data_dir, "tls"), persist=True)
        else:
            tls = self._kept_tls() if self.ca_dir else None
            if tls is None:
                tls = make_tls(self._scratch())
        self.ca_path = tls.ca_path
        self.bundle_path = write_bundle(os.path.dirname(tls.ca_path), tls.ca_path)
        issuer = self.issuer = TokenIssuer(_signing_key(self.data_dir))
        self.identity_header = _identity_header(self.data_dir)
        self.lake_app = LakeApp(self.config, issuer, self._lake_store())
        self.vault_app = VaultApp(self.config, issuer, SecretStore(
            os.path.join(self.data_dir, "vault.json") if self.data_dir else None))
        try:
            self.lake = self._serve(0, self.lake_app, tls.context, self.network)
            self.vault = self._serve(1, self.vault_app, tls.context, self.network)
            self.identity_app = PerVm(IdentityApp(self.config, issuer, self.identity_header),
                                      self.identity_limits)
            self.identity = self._serve(2, self.identity_app, None, None)
        except BaseException:
            self.stop()  # a port was taken: release the ones already bound
            raise
        self.lake_app.base_url = self.lake.base_url
        self._seed()
        if self.batch is not None:
            try:
                self.batch.start(self, issuer, tls.context, self.data_dir or self._scratch())
            except BaseException:
                self.stop()
                raise
            self.notes.extend(self.batch.notes)
        return self

    def _scratch(self) -> str:
        """The temporary folder (removed at ``stop()``) of what ``data_dir`` would keep."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="worker-emulators-")
        return self._tmp

    def _kept_tls(self):
        """The CA kept in ``ca_dir``; None (a note says why) when that folder cannot be
        used (a read-only home): a temporary CA then, which goes with the emulators."""
        assert self.ca_dir
        try:
            return make_tls(self.ca_dir, persist=True)
        except OSError as e:
            self.notes.append("cannot keep the CA in %s (%s); using a temporary one, which "
                              "goes when the emulators stop" % (self.ca_dir, e.strerror or e))
            return None

    def _serve(self, index: int, app: Any, tls: Any, network: Optional[Network]
               ) -> EmulatorServer:
        """Start one server on its port, its preferred port, or (that one taken) any port."""
        return start_server(app, self.ports[index], self.preferred_ports[index], tls,
                            SERVICES[index], self.notes, faults=self.faults,
                            counters=self.counters, network=network,
                            on_request=self.on_request)

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

    def reset_seeded_state(self) -> None:
        """Back to the configured start: seed secrets only, configured file systems empty.

        File systems not named in the configuration are left alone (tests make their own,
        with unique names).
        """
        self.vault_app.store.reset(dict(self.config.secrets))
        self.lake_app.store.empty_filesystems(self.config.filesystems)

    def load_directory(self, filesystem: str, directory: str) -> int:
        """Copy the files below a local ``directory`` into ``filesystem``; how many."""
        return load_directory(self.lake_app.store, filesystem, directory)

    @property
    def bound_ports(self) -> Tuple[int, int, int]:
        """The ports the lake, the vault and IMDS listen on."""
        assert self.lake and self.vault and self.identity, "start() first"
        return self.lake.port, self.vault.port, self.identity.port

    def stop(self) -> None:
        """Stop the servers and remove a temporary CA and folder (a kept CA stays)."""
        if self.batch is not None:
            self.batch.stop()
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

    def vm_identity_url(self, vm: Optional[str]) -> str:
        """The identity endpoint of VM ``vm`` (its own limits): ``.../vms/<vm>``."""
        return self.identity_url + ("/vms/%s" % vm if vm else "")

    def identity_stats(self) -> Dict[str, Dict[str, int]]:
        """Token requests per VM, served and throttled (empty without limits)."""
        return self.identity_app.stats()

    def environment(self, client_id: Optional[str] = None, filesystem: Optional[str] = None,
                    app_service: bool = True, vm: Optional[str] = None) -> Dict[str, str]:
        """The variables that point a worker, and the Azure clients people reach for, at these
        emulators: loading them (``emulate --env-file``) is all a client needs.

        - the worker: WORKER_LAKE_URL, WORKER_VAULT_URL, AZURE_CLIENT_ID and IMDS's
          AZURE_POD_IDENTITY_AUTHORITY_HOST;
        - trust in the emulators' CA: REQUESTS_CA_BUNDLE (requests), SSL_CERT_FILE
          (OpenSSL's default paths: aiohttp, Rust's native roots) and CURL_CA_BUNDLE (curl,
          which reads it before SSL_CERT_FILE), all the bundle;
        - the storage account: AZURE_STORAGE_ACCOUNT_NAME/_KEY, AZURE_STORAGE_ENDPOINT
          (obstore), AZURE_STORAGE_CONNECTION_STRING (the Blob SDK, adlfs, az),
          FSSPEC_ABFS_ACCOUNT_HOST (fsspec's abfs:// and az://);
        - managed identity for clients that speak App Service's protocol: IDENTITY_ENDPOINT
          and IDENTITY_HEADER, unless ``app_service`` is False (a node's environment).

        With ``vm``, both identity endpoints are that VM's (``.../vms/<vm>``: its own limits),
        as for a process on that VM.
        """
        if filesystem is None:
            filesystem = self.config.filesystems[0] if self.config.filesystems else "data"
        if client_id is None:
            client_id = self.config.identities[0].client_id if self.config.identities else ""
        account, key, url = self.config.account, self.config.account_key, self.account_url
        env = {
            "WORKER_LAKE_URL": "%s/%s" % (url, filesystem),
            "WORKER_VAULT_URL": self.vault_url,
            "AZURE_CLIENT_ID": client_id,
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.vm_identity_url(vm),
            "REQUESTS_CA_BUNDLE": self.bundle_path,
            "SSL_CERT_FILE": self.bundle_path,
            "CURL_CA_BUNDLE": self.bundle_path,
            "AZURE_STORAGE_ACCOUNT_NAME": account,
            "AZURE_STORAGE_ACCOUNT_KEY": key,
            "AZURE_STORAGE_ENDPOINT": url,
            "AZURE_STORAGE_CONNECTION_STRING": (
                "DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;"
                % (account, key, url)),
            "FSSPEC_ABFS_ACCOUNT_HOST": url.split("://", 1)[1],
        }
        if app_service:
            env["IDENTITY_ENDPOINT"] = self.vm_identity_url(vm) + "/msi/token"
            env["IDENTITY_HEADER"] = self.identity_header
        if self.batch is not None:
            env.update(self.batch.environment())
        return env
