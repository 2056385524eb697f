"""The process's one Azure credential, shared by the lake, Key Vault and DuckDB clients.

On a Batch node (``AZ_BATCH_NODE_ID`` is set) it is ``ManagedIdentityCredential`` for the
pool's user-assigned identity, whose client id comes from ``WORKER_CLIENT_ID`` or
``AZURE_CLIENT_ID``; no keys, connection strings or SAS tokens are used. Off Batch (a laptop)
it is ``DefaultAzureCredential``, which tries, in this order and stopping at the first that
gives a token:

1. environment: a service principal from ``AZURE_TENANT_ID`` + ``AZURE_CLIENT_ID`` +
   ``AZURE_CLIENT_SECRET`` (or ``AZURE_CLIENT_CERTIFICATE_PATH``);
2. workload identity (``AZURE_FEDERATED_TOKEN_FILE``, Kubernetes);
3. managed identity (``WORKER_CLIENT_ID``/``AZURE_CLIENT_ID`` selects a user-assigned one);
4. the shared token cache (Windows), then Visual Studio Code where supported;
5. Azure CLI (``az login``), then Azure PowerShell, then Azure Developer CLI (``azd``).

Interactive browser login is excluded: a task must never wait for a person.

Retries of the token requests are the SDK's own (``ImdsRetryPolicy`` for IMDS), set from
``WORKER_RETRY_TOTAL`` and ``WORKER_RETRY_BACKOFF``. Tokens are cached by the credential
(MSAL's cache, refreshed before they expire), so clients never re-fetch one per call.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, Optional, Tuple

from .errors import AccessDenied, RetryableError, WorkerError, first_line

_lock = threading.Lock()
# One credential per identity selection; a task process has exactly one.
_credentials: Dict[Tuple[bool, Optional[str]], Any] = {}

#: The token scopes the worker asks for: Data Lake (storage) and Key Vault.
STORAGE_SCOPE = "https://storage.azure.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"


def on_batch(config) -> bool:
    """True on a Batch compute node (the agent sets ``AZ_BATCH_NODE_ID`` for every task)."""
    return bool(config.environ.get("AZ_BATCH_NODE_ID"))


def get_credential(config):
    """The process's credential, built on first use and shared by every client."""
    key = (on_batch(config), config.client_id)
    with _lock:
        if key not in _credentials:
            _credentials[key] = _build(config)
        return _credentials[key]


def reset_credential() -> None:
    """Forget the cached credential (a long-lived test process switching identities)."""
    with _lock:
        _credentials.clear()


def describe_credential(config) -> str:
    """Which credential this configuration uses, in words (for doctor and error messages)."""
    who = identity_name(config)
    if on_batch(config):
        return f"ManagedIdentityCredential ({who}, Batch node)"
    return f"DefaultAzureCredential (off Batch; managed identity part: {who})"


def identity_name(config) -> str:
    """How messages name the identity: its client id, or the default one."""
    if config.client_id:
        return f"client id {config.client_id}"
    return "the default identity (no WORKER_CLIENT_ID/AZURE_CLIENT_ID set)"


def token_error(error: BaseException, config, service: str) -> WorkerError:
    """Our error for a credential that gave no token for ``service`` (raised inside an SDK
    call): the identity endpoint not answering, or answering with a server error or
    throttling, is transient (exit 3); an endpoint that refused the request (an unknown or
    unassigned identity: an OAuth client error) is configuration (exit 2)."""
    from .connection import connection_error

    if _did_not_answer(error):
        where, setting = identity_endpoint(config)
        failed = connection_error(error, f"no token for {service}: the managed-identity "
                                  f"endpoint {where}", setting, config.environ)
        if not isinstance(failed, RetryableError):
            return failed  # an untrusted certificate or an unknown host: configuration
        return RetryableError(
            f"no token for {service}: the managed-identity endpoint {where} did not answer "
            f"after the retries ({first_line(error)}); {_endpoint_fix(config, setting)}")
    code = _imds_code(error)
    if code is not None and not _REFUSAL_CODE.search(code):
        where, _ = identity_endpoint(config)
        return RetryableError(f"no token for {service}: the managed-identity endpoint {where} "
                              f"failed ({code or 'no answer'}) after its retries; it may be "
                              "overloaded or restarting: a retry of the task may succeed")
    return AccessDenied(
        f"no token for {service} with {identity_name(config)}: {_refusal(error)}; "
        + _token_fix(config))


#: Where azure-identity asks for managed-identity tokens, first match wins (its order).
_ENDPOINT_VARIABLES = ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "MSI_ENDPOINT")
IMDS = "http://169.254.169.254"


def identity_endpoint(config) -> Tuple[str, str]:
    """The managed-identity endpoint tokens come from, and what sets it (for messages)."""
    for name in _ENDPOINT_VARIABLES:
        value = config.environ.get(name, "").strip()
        if value:
            return f"{value} ({name})", name
    return f"{IMDS} (IMDS, the Azure VM's)", "the pool's identity settings"


def _endpoint_fix(config, setting: str) -> str:
    if setting == "AZURE_POD_IDENTITY_AUTHORITY_HOST":
        return (f"check that {setting} names a running identity endpoint (the emulators: "
                "python -m worker emulate)")
    if on_batch(config):
        return ("check that the pool's nodes reach IMDS (a proxy must not take 169.254.169.254: "
                "put it in NO_PROXY), that the pool has the user-assigned identity, and retry")
    return (f"check {setting}, or sign in another way off Azure (az login), then retry")


def _did_not_answer(error: BaseException) -> bool:
    """No whole answer from the endpoint: refused, reset, timed out, or cut off midway
    (azure-identity words the last as a credential error)."""
    from .connection import broke_off

    return broke_off(error)


# azure-identity words every failed IMDS answer as "no response from the IMDS endpoint."
# followed by the answer's OAuth error code (nothing when there was no answer at all).
_UNAVAILABLE = "no response from the IMDS endpoint."
# OAuth 2 client errors: the request itself is wrong (e.g. "Identity not found" is a 400
# invalid_request); anything else (server_error, throttling, 5xx codes) is worth a retry.
# The code stands alone ("invalid_request") or in a sentence ("Token request error:
# (invalid_request) Identity not found"), depending on the azure-identity version.
_REFUSAL_CODE = re.compile(r"\b(invalid_request|invalid_client|unauthorized_client|"
                           r"invalid_grant|invalid_scope|invalid_resource|access_denied)\b")


def _imds_code(error: BaseException) -> Optional[str]:
    """The OAuth error code IMDS answered with ("" for none), or None when the error is
    not about IMDS at all (e.g. a developer credential off Batch)."""
    text = first_line(error)
    if _UNAVAILABLE not in text:
        return None
    return text.split(_UNAVAILABLE, 1)[1].strip()


def _refusal(error: BaseException) -> str:
    code = _imds_code(error)
    if code:
        return f"the managed-identity endpoint refused ({code})"
    return first_line(error)


def _token_fix(config) -> str:
    if on_batch(config):
        return ("assign the user-assigned managed identity to the pool and set "
                "AZURE_CLIENT_ID (or WORKER_CLIENT_ID) to its client id")
    return ("run 'az login', or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or "
            "point AZURE_CLIENT_ID at a managed identity this machine has")


def _retry_options(config) -> Dict[str, Any]:
    return {"retry_total": config.retry_total, "retry_backoff_factor": config.retry_backoff}


def _build(config):
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if on_batch(config):
        return ManagedIdentityCredential(client_id=config.client_id, **_retry_options(config))
    _check_local_identity_endpoint(config)
    options: Dict[str, Optional[Any]] = dict(_retry_options(config))
    if config.client_id:
        options["managed_identity_client_id"] = config.client_id
    return DefaultAzureCredential(exclude_interactive_browser_credential=True, **options)


def _check_local_identity_endpoint(config) -> None:
    """An identity endpoint on this machine (the emulators', named by
    AZURE_POD_IDENTITY_AUTHORITY_HOST) that refuses connections is reported at once: the
    SDKs would retry it, around every request, for minutes before the same answer."""
    from .probe import Endpoint, unreachable

    url = config.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip()
    endpoint = Endpoint("identity endpoint", url, "AZURE_POD_IDENTITY_AUTHORITY_HOST")
    if not url or not endpoint.loopback:
        return
    problem = unreachable(endpoint, timeout=1.0)
    if problem is not None:
        raise RetryableError(
            f"no token: the managed-identity endpoint {url} (AZURE_POD_IDENTITY_AUTHORITY_HOST) "
            f"is on this machine and {problem.split(' ', 1)[1]}: is the emulator running? Start "
            "it with 'python -m worker emulate --env-file .emulators.env' and load that file")
