"""Which Batch account the deploy loop talks to, how it signs in, and its SDK clients.

The account is where the environment says, as for ``az batch`` (the variables below, which
the emulators' env file sets too), else where the spec file says, else (the URL) where the
account plane says; ``--account-url`` overrides them all:

| setting              | variable (first)                  | spec key (then)           |
|----------------------|-----------------------------------|---------------------------|
| data-plane URL       | ``AZURE_BATCH_ENDPOINT``          | ``[pool] account_url``    |
| account name         | ``AZURE_BATCH_ACCOUNT``           | ``[pool] account``        |
| subscription         | ``AZURE_SUBSCRIPTION_ID``         | ``[pool] subscription``   |
| resource group       | ``AZURE_RESOURCE_GROUP``          | ``[pool] resource_group`` |
| account plane (ARM)  | ``AZURE_ARM_ENDPOINT`` (default https://management.azure.com) |

Without a URL anywhere, the account plane gives it (the account's ``accountEndpoint``).
Sign-in is ``DefaultAzureCredential`` (az login, a service principal's variables, workload
identity, managed identity: ``worker.identity``); the data plane signs with the account's
shared key only when asked (``--shared-key``, or ``WORKER_BATCH_AUTH=shared-key``), the key
read from ``AZURE_BATCH_ACCESS_KEY``, never from the command line. The account plane always
signs in with Entra ID.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from ..errors import CloudError
from .failures import Where, translate

ENDPOINT = "AZURE_BATCH_ENDPOINT"
ACCOUNT = "AZURE_BATCH_ACCOUNT"
ACCESS_KEY = "AZURE_BATCH_ACCESS_KEY"
SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID"
RESOURCE_GROUP = "AZURE_RESOURCE_GROUP"
RESOURCE_MANAGER = "AZURE_ARM_ENDPOINT"
AUTH = "WORKER_BATCH_AUTH"
AUTH_MODES = ("entra", "shared-key")
#: The SDKs' own retries of a call (azure-core: 5xx, 429, lost connections, with backoff
#: from 0.8 s); the task adder retries what outlives them, task by task.
RETRIES = {"retry_total": 3}


@dataclass(frozen=True)
class Target:
    """The account: its name and URLs, and whether the data plane signs with its key."""

    account: str
    url: str
    subscription: str
    resource_group: str
    arm_url: str
    shared_key: bool

    def where(self, setting: str = "--account-url or AZURE_BATCH_ENDPOINT") -> Where:
        return Where(self.account, self.url, self.shared_key, setting)

    def require_arm(self, why: str) -> None:
        """The account plane needs the subscription and the resource group."""
        missing = [name for name, value in (("[pool] subscription or " + SUBSCRIPTION,
                                             self.subscription),
                                            ("[pool] resource_group or " + RESOURCE_GROUP,
                                             self.resource_group),
                                            ("[pool] account or " + ACCOUNT, self.account))
                   if not value]
        if missing:
            raise CloudError("%s goes through the account plane, which needs %s: set %s"
                             % (why, " and ".join(m.split(" or ")[0] for m in missing),
                                "; ".join(missing)))


def resolve(spec: Any = None, account_url: Optional[str] = None, shared_key: bool = False,
            environ: Optional[Mapping[str, str]] = None) -> Target:
    """The target from the options, the spec (or None) and the environment."""
    env = os.environ if environ is None else environ

    def pick(key: str, variable: str) -> str:
        value = env.get(variable, "").strip()
        if not value and spec is not None:
            value = str(spec.get("pool", key) or "").strip()
        return value

    url = (account_url or pick("account_url", ENDPOINT)).rstrip("/")
    if url and "://" not in url:
        url = "https://" + url  # az prints endpoints without a scheme
    account = pick("account", ACCOUNT) or _name_from(url)
    mode = env.get(AUTH, "entra").strip().lower() or "entra"
    if mode not in AUTH_MODES:
        raise CloudError("%s=%r: use one of %s" % (AUTH, mode, ", ".join(AUTH_MODES)))
    return Target(account=account, url=url, subscription=pick("subscription", SUBSCRIPTION),
                  resource_group=pick("resource_group", RESOURCE_GROUP),
                  arm_url=env.get(RESOURCE_MANAGER, "").strip().rstrip("/"),
                  shared_key=shared_key or mode == "shared-key")


def _name_from(url: str) -> str:
    host = urlsplit(url).hostname or ""
    first = host.split(".")[0]
    return "" if not first or first.replace("-", "").isdigit() or host[:1].isdigit() else first


class Clients:
    """The SDK clients of one command, made on first use, sharing one credential; every
    request they send is counted (``requests``: ``batch`` the data plane, ``account`` the
    account plane, ``upload`` the package's upload, ``compare`` reading the version there)."""

    def __init__(self, target: Target, environ: Optional[Mapping[str, str]] = None,
                 **sdk_options: Any) -> None:
        """``sdk_options`` go to both SDK clients (e.g. ``retry_backoff_factor``)."""
        self.target = target
        self.sdk_options = dict(RETRIES, **sdk_options)
        self.environ = dict(os.environ if environ is None else environ)
        self.requests: Counter = Counter()
        self._lock = threading.Lock()
        self._batch: Any = None
        self._mgmt: Any = None
        self._credential: Any = None

    # -- sign-in -------------------------------------------------------------------------

    @property
    def config(self):
        from ...config import Config

        return Config.from_env(self.environ)

    @property
    def credential(self) -> Any:
        """The Entra credential (``worker.identity``: DefaultAzureCredential off Batch)."""
        if self._credential is None:
            from ...identity import get_credential

            self._credential = get_credential(self.config)
        return self._credential

    # -- clients ---------------------------------------------------------------------------

    @property
    def batch(self) -> Any:
        """The data plane: ``azure.batch.BatchClient`` on the account URL."""
        with self._lock:
            if self._batch is None:
                self._batch = self._make_batch()
            return self._batch

    def _make_batch(self) -> Any:
        from azure.batch import BatchClient

        url = self.account_url()
        if self.target.shared_key:
            from azure.core.credentials import AzureNamedKeyCredential

            key = self.environ.get(ACCESS_KEY, "").strip()
            if not key:
                raise CloudError("--shared-key signs with the account's key, but %s is not "
                                 "set: set it (az batch account keys list), or sign in with "
                                 "az login and leave out --shared-key" % ACCESS_KEY)
            credential: Any = AzureNamedKeyCredential(self.target.account or "?", key)
        else:
            credential = self.credential
        return BatchClient(url, credential, per_retry_policies=[self.counter("batch")],
                           connection_timeout=30, read_timeout=120, **self.sdk_options)

    @property
    def mgmt(self) -> Any:
        """The account plane: ``azure.mgmt.batch.BatchManagementClient``."""
        with self._lock:
            if self._mgmt is None:
                from azure.mgmt.batch import BatchManagementClient

                self.target.require_arm("this")
                options = {"base_url": self.target.arm_url} if self.target.arm_url else {}
                self._mgmt = BatchManagementClient(
                    self.credential, self.target.subscription,
                    per_retry_policies=[self.counter("account")], **options,
                    **self.sdk_options)
            return self._mgmt

    def account_url(self) -> str:
        """The data-plane URL: given, or the account plane's ``accountEndpoint``."""
        if self.target.url:
            return self.target.url
        self.target.require_arm("finding the account's URL (no --account-url, [pool] "
                                "account_url or %s)" % ENDPOINT)
        try:
            account = self.mgmt.batch_account.get(self.target.resource_group,
                                                  self.target.account)
        except Exception as e:  # the SDK's errors, translated at this boundary
            raise translate(e, "reading Batch account %s" % self.target.account,
                            self.target.where(), not_found=self.missing_account()) from None
        endpoint = account.account_endpoint or ""
        url = endpoint if "://" in endpoint else "https://" + endpoint
        object.__setattr__(self.target, "url", url.rstrip("/"))
        return self.target.url

    def missing_account(self) -> str:
        t = self.target
        return ("there is no Batch account %s in resource group %s of subscription %s: check "
                "[pool] account, resource_group and subscription (or %s, %s, %s)"
                % (t.account, t.resource_group, t.subscription, ACCOUNT, RESOURCE_GROUP,
                   SUBSCRIPTION))

    def counter(self, plane: str) -> Any:
        from azure.core.pipeline.policies import SansIOHTTPPolicy

        counts = self.requests

        class _Count(SansIOHTTPPolicy):  # per retry: every request that goes out
            def on_request(self, request: Any) -> None:
                counts[plane] += 1

        return _Count()

    def close(self) -> None:
        for client in (self._batch, self._mgmt):
            if client is not None:
                client.close()
