"""The Key Vault backend of ``ctx.secrets``, through the process's managed identity; and the
vault's other operations (set, list, delete, purge) for ``python -m worker secrets``.

The ``SecretClient`` is created on first use. Retries are azure-core's own ``RetryPolicy``
(it retries 408, 429 honouring ``Retry-After``, and 5xx), with ``WORKER_RETRY_TOTAL`` retries
and ``WORKER_RETRY_BACKOFF`` as its backoff factor. SDK errors become:

| Key Vault answer                    | raised                                               |
|-------------------------------------|------------------------------------------------------|
| 404 SecretNotFound                  | SecretNotFound, a KeyError naming secret, vault (2)  |
| 401, 403, no token                  | AccessDenied, a PermissionError naming identity,     |
|                                     | secret and role (2)                                  |
| 409 Conflict (set: a deleted name)  | ConfigError naming the purge (2)                     |
| 408, 429, 5xx, connection errors    | RetryableError (3)                                   |
| untrusted certificate, unknown host | ConfigError (2)                                      |

The one difference between Azure and the loopback emulator lives here: Key Vault's check
that the challenge's resource matches the vault's domain is relaxed for loopback hosts only.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List, NamedTuple, Optional
from urllib.parse import urlparse

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient

from .connection import ca_bundle, connection_error
from .errors import AccessDenied, ConfigError, RetryableError, SecretNotFound, first_line
from .identity import get_credential, identity_name, token_error

SECRETS_ROLE = "Key Vault Secrets User"
OFFICER_ROLE = "Key Vault Secrets Officer"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_TRANSIENT = {408, 429, 500, 502, 503, 504}


class _Action(NamedTuple):
    """An operation, as messages name it: "may not set secret 'x' in ..."."""

    verb: str
    doing: str
    where: str  # "from" or "in"
    role: str
    policy: str


READ = _Action("read", "reading", "from", SECRETS_ROLE, "get")
LIST = _Action("list", "listing", "in", SECRETS_ROLE, "list")
SET = _Action("set", "setting", "in", OFFICER_ROLE, "set")
DELETE = _Action("delete", "deleting", "from", OFFICER_ROLE, "delete")
PURGE = _Action("purge", "purging", "from", OFFICER_ROLE, "purge")


class SecretInfo(NamedTuple):
    """A secret's name and attributes, never its value."""

    name: str
    updated: Optional[float]  # seconds since the epoch
    enabled: bool


class VaultBackend:
    """Secrets from ``WORKER_VAULT_URL``; ``credential_factory(config)`` gives the credential
    (default: the process's shared one). The interface of ``worker.secrets.Backend``."""

    def __init__(self, config, credential_factory: Optional[Callable[[Any], Any]] = None) -> None:
        self.config = config
        self.vault_url = config.vault_url.rstrip("/")
        self.source = f"the Key Vault {self.vault_url}"
        self._credential_factory = credential_factory or get_credential
        self._client: Optional[SecretClient] = None
        self._lock = threading.Lock()

    @property
    def client(self) -> SecretClient:
        with self._lock:
            if self._client is None:
                self._client = SecretClient(
                    self.vault_url, self._credential_factory(self.config),
                    verify_challenge_resource=not is_loopback(self.vault_url),
                    retry_total=self.config.retry_total,
                    connection_verify=ca_bundle(self.config.environ),
                    retry_backoff_factor=self.config.retry_backoff,
                )
            return self._client

    def fetch(self, name: str, version: Optional[str]) -> str:
        try:
            secret = self.client.get_secret(name, version)
        except _SDK_ERRORS as e:
            raise self._translate(e, name, version) from None
        return secret.value or ""

    def store(self, name: str, value: str) -> str:
        """Set ``name`` to ``value`` (a new version); the version's id."""
        try:
            return self.client.set_secret(name, value).properties.version or ""
        except _SDK_ERRORS as e:
            raise self._translate(e, name, None, SET) from None

    def names(self) -> List[SecretInfo]:
        """Every live secret, sorted by name (values are never listed)."""
        try:
            found = [SecretInfo(p.name or "", p.updated_on.timestamp() if p.updated_on
                                else None, bool(p.enabled))
                     for p in self.client.list_properties_of_secrets()]
        except _SDK_ERRORS as e:
            raise self._translate(e, "", None, LIST) from None
        return sorted(found)

    def delete(self, name: str) -> None:
        """Delete ``name`` (Key Vault keeps it, recoverable, until purged); waits until done."""
        try:
            self.client.begin_delete_secret(name).wait()
        except _SDK_ERRORS as e:
            raise self._translate(e, name, None, DELETE) from None

    def purge(self, name: str) -> None:
        """Remove a deleted secret for good (its name can be set again)."""
        try:
            self.client.purge_deleted_secret(name)
        except _SDK_ERRORS as e:
            raise self._translate(e, name, None, PURGE) from None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None

    def _translate(self, error: Exception, name: str, version: Optional[str],
                   action: _Action = READ) -> Exception:
        """Our error for an SDK one; never includes a secret value or a token."""
        what = (f"secret {name!r}" if name else "the secrets") + (
            f" version {version!r}" if version else "")
        doing = f"{action.doing} {what} {action.where} {self.source}"
        if isinstance(error, (ServiceRequestError, ServiceResponseError)):
            return connection_error(error, doing, "WORKER_VAULT_URL", self.config.environ)
        status = getattr(error, "status_code", None)
        code = _error_code(error)
        if isinstance(error, ResourceNotFoundError) or status == 404:
            if action is PURGE:
                return SecretNotFound(f"no deleted secret {name!r} to purge in {self.source} "
                                      f"({status} {code})")
            hint = "check the name and version" if version else "check the name"
            create = " or create it" if action is READ else ""
            return SecretNotFound(f"secret {name!r} not found in {self.source}; {hint}"
                                  f"{create} ({status} {code})")
        if status in (401, 403):
            return AccessDenied(
                f"{identity_name(self.config)} may not {action.verb} {what} "
                f"{'in' if action is READ else action.where} {self.source} ({status} {code}); "
                f"grant it the role '{action.role}' on the vault (or a '{action.policy}' "
                "access policy)")
        if status == 409 and action is SET:
            return ConfigError(
                f"secret {name!r} was deleted and Key Vault keeps it (soft delete), so the "
                f"name cannot be set again yet in {self.source}; purge it (python -m worker "
                f"secrets rm {name} --purge) or recover it ({status} {code})",
                code="vault.deleted_name")
        if isinstance(error, ClientAuthenticationError):  # the credential gave no token
            return token_error(error, self.config, self.source)
        if status in _TRANSIENT or (status or 0) >= 506:
            return RetryableError(f"{doing} failed after the SDK's retries: {status} {code}")
        return OSError(f"{doing} failed: {status} {code}: {first_line(error)}")


_SDK_ERRORS = (HttpResponseError, ServiceRequestError, ServiceResponseError)


def is_loopback(url: str) -> bool:
    """True for a URL on this machine (the emulator), where the challenge check is relaxed."""
    return (urlparse(url).hostname or "") in _LOOPBACK


def _error_code(error: Exception) -> str:
    """The service's error code (header or body), e.g. ``PathNotFound``."""
    body = getattr(error, "error", None)
    code = getattr(error, "error_code", None) or getattr(body, "code", None)
    return str(code or "")
