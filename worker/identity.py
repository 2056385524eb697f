"""The process's one Azure credential, shared by the lake, Key Vault and DuckDB clients.

On a Batch node (``AZ_BATCH_NODE_ID`` is set) it is :class:`NodeCredential`: tokens of the
pool's user-assigned identity, whose client id comes from ``WORKER_CLIENT_ID`` or
``AZURE_CLIENT_ID``, from the node's managed-identity endpoint (:mod:`worker.imds`), shared
with the node's other tasks through the token cache in the node's shared folder
(:mod:`worker.tokencache`; ``WORKER_TOKEN_CACHE=off`` keeps them per process); no keys,
connection strings or SAS tokens are used. Off Batch (a laptop) it is
``DefaultAzureCredential``, which tries, in this order and stopping at the first that gives
a token:

1. environment: a service principal from ``AZURE_TENANT_ID`` + ``AZURE_CLIENT_ID`` +
   ``AZURE_CLIENT_SECRET`` (or ``AZURE_CLIENT_CERTIFICATE_PATH``);
2. workload identity (``AZURE_FEDERATED_TOKEN_FILE``, Kubernetes);
3. managed identity (``WORKER_CLIENT_ID``/``AZURE_CLIENT_ID`` selects a user-assigned one);
4. the shared token cache (Windows), then Visual Studio Code where supported;
5. Azure CLI (``az login``), then Azure PowerShell, then Azure Developer CLI (``azd``).

Interactive browser login is excluded: a task must never wait for a person.

Token requests are retried ``WORKER_RETRY_TOTAL`` times from ``WORKER_RETRY_BACKOFF``: on a
node by :mod:`worker.imds` (with jitter, a 429 always transient), off Batch by the SDK.
Tokens are cached by the credential and refreshed before they expire, so clients never
re-fetch one per call.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Dict, Optional, Tuple

from .errors import AccessDenied, ConfigError, RetryableError, WorkerError, first_line

log = logging.getLogger(__name__)
_lock = threading.Lock()
# One credential per identity selection; a task process has exactly one.
_credentials: Dict[Tuple[Any, ...], Any] = {}

#: The token scopes the worker asks for: Data Lake (storage) and Key Vault.
STORAGE_SCOPE = "https://storage.azure.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"


def on_batch(config) -> bool:
    """True on a Batch compute node (the agent sets ``AZ_BATCH_NODE_ID`` for every task)."""
    return bool(config.environ.get("AZ_BATCH_NODE_ID"))


def get_credential(config):
    """The process's credential, built on first use and shared by every client. A task has
    one configuration; a long-lived process (the pytest plugin, a test run) may meet
    several, and a credential is never reused for another identity endpoint (its tokens
    would be refused there)."""
    endpoints = tuple(config.environ.get(name, "") for name in _ENDPOINT_VARIABLES)
    key = (on_batch(config), config.client_id, config.token_cache, endpoints,
           config.environ.get("AZ_BATCH_NODE_SHARED_DIR", ""))
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
        from .tokencache import shared_folder

        folder = shared_folder(config.environ)
        if not config.token_cache:
            shared = "tokens per process (WORKER_TOKEN_CACHE=off)"
        elif folder is None:
            shared = "tokens per process (no AZ_BATCH_NODE_SHARED_DIR)"
        else:
            shared = f"tokens shared by the node's tasks in {folder}"
        return f"managed identity from the node's endpoint ({who}, Batch node; {shared})"
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

    ours = _worker_error_in(error)
    if ours is not None:  # NodeCredential's, wrapped for azure-core's pipeline
        return ours
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


def _worker_error_in(error: BaseException) -> Optional[WorkerError]:
    link: Optional[BaseException] = error
    while link is not None:
        if isinstance(link, WorkerError):
            return link
        link = link.__cause__
    return None


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
    if on_batch(config):
        return NodeCredential(config)
    from azure.identity import DefaultAzureCredential

    _check_local_identity_endpoint(config)
    throttled = _Throttled()
    options: Dict[str, Optional[Any]] = dict(_retry_options(config), raw_response_hook=throttled)
    if config.client_id:
        options["managed_identity_client_id"] = config.client_id
    return _ThrottleAware(DefaultAzureCredential(exclude_interactive_browser_credential=True,
                                                 **options), throttled)


class _Throttled:
    """The credential pipelines' response hook: whether the identity endpoint throttled the
    requests (429) since its last success. azure-identity reports a throttled request in the
    words of a refusal (IMDS writes its 429 body as ``invalid_request``), and MSAL, under it,
    answers a repeated request from its memory of the 429 for a while, sending nothing."""

    _FORGET_AFTER = 300.0  # seconds: longer than MSAL keeps a 429 without Retry-After (60)

    def __init__(self) -> None:
        self._since: Optional[float] = None

    def __call__(self, response: Any) -> None:
        status = getattr(response.http_response, "status_code", None)
        if status == 429:
            self._since = time.monotonic()
        elif status is not None and status < 400:
            self._since = None

    @property
    def recently(self) -> bool:
        since = self._since
        return since is not None and time.monotonic() - since < self._FORGET_AFTER


class _ThrottleAware:
    """``DefaultAzureCredential`` whose failure after a throttled answer is transient
    (exit 3), as on a node; everything else is the credential's own."""

    def __init__(self, credential: Any, throttled: _Throttled) -> None:
        self._credential = credential
        self._throttled = throttled

    def get_token(self, *scopes: str, **kwargs: Any):
        return self._classified(self._credential.get_token, scopes, kwargs)

    def get_token_info(self, *scopes: str, **kwargs: Any):
        """azure-core's pipelines call this where the credential has it."""
        return self._classified(self._credential.get_token_info, scopes, kwargs)

    def _classified(self, call: Any, scopes: Tuple[str, ...], kwargs: Dict[str, Any]):
        from azure.core.exceptions import ClientAuthenticationError

        try:
            return call(*scopes, **kwargs)
        except ClientAuthenticationError as e:
            if not self._throttled.recently:
                raise
            error = RetryableError(f"no token for {', '.join(scopes)}: the identity endpoint "
                                   "throttled the requests (429) through the SDK's retries")
            error.__cause__ = e
            raise _no_token(error) from error

    def __getattr__(self, name: str) -> Any:  # close(), _successful_credential, ...
        return getattr(self._credential, name)


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


class NodeCredential:
    """A task's credential on a Batch node: tokens from the node's managed-identity endpoint
    (:mod:`worker.imds`), one per identity and resource for the whole node through the
    shared token cache (:mod:`worker.tokencache`) unless ``WORKER_TOKEN_CACHE=off``, and
    kept in memory for the process. A ``TokenCredential`` (``get_token``) for every Azure
    SDK client; thread-safe. Finding a fresh token imports no Azure SDK.

    With the cache, the first process that needs a token fetches it while holding the
    token's lock, and the node's other processes wait for it and read it; a token due for
    refresh (past half its life, or within five minutes of its expiry) is refreshed by one
    process while the others go on using it.
    """

    def __init__(self, config) -> None:
        from .imds import endpoint_url
        from .tokencache import SharedTokens, shared_folder

        self.config = config
        self.endpoint = endpoint_url(config.environ)
        folder = shared_folder(config.environ) if config.token_cache else None
        self.shared = SharedTokens.open(folder) if folder is not None else None
        self._memory: Dict[str, Any] = {}
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, claims: Optional[str] = None,
                  tenant_id: Optional[str] = None, **kwargs: Any):
        """A token for ``scopes`` (one scope: the resource's ``/.default``)."""
        from .imds import Token, resource_of
        from .tokencache import Identity

        if len(scopes) != 1:
            raise ValueError("NodeCredential.get_token takes exactly one scope, not %r"
                             % (scopes,))
        identity = Identity(self.endpoint, self.config.client_id or "", resource_of(scopes[0]))
        with self._lock:
            cached = self._memory.get(identity.resource)
            if cached is None or not cached.fresh(time.time()):
                cached = self._memory[identity.resource] = self._find(identity, cached)
        return Token(cached.token, cached.expires_on)

    def close(self) -> None:
        """Nothing to release (a ``TokenCredential`` may be closed)."""

    def _find(self, identity, held):
        if self.shared is None:
            return self._fetch(identity, held)
        found = self.shared.read(identity)
        if found is not None and found.fresh(time.time()):
            return found
        if found is not None:  # usable but due: one process refreshes, the rest go on
            with self.shared.lock(identity, wait=False) as mine:
                return self._fetch_shared(identity, found) if mine else found
        with self.shared.lock(identity, wait=True):
            return self._fetch_shared(identity, held)

    def _fetch_shared(self, identity, current):
        """Under the token's lock: what another process stored meanwhile, else a new one;
        a fetch that just failed for another process fails this one alike, at once."""
        latest = self.shared.read(identity)
        if latest is not None and latest.fresh(time.time()):
            return latest
        current = latest or current
        failure = self.shared.recent_failure(identity)
        if failure is not None and (current is None or not current.usable(time.time())):
            kind = {"AccessDenied": AccessDenied, "ConfigError": ConfigError}.get(
                failure["kind"], RetryableError)
            raise _no_token(kind(failure["message"] + " (another task of this node, "
                                 "moments ago)"))
        fetched = self._fetch(identity, current, self.shared)
        if fetched is not current:
            self.shared.write(identity, fetched)
        return fetched

    def _fetch(self, identity, current, shared=None):
        """A new token from the endpoint; if that fails while ``current`` is still usable,
        ``current``; else the failure, recorded in ``shared`` for the processes waiting."""
        from .imds import Refused, Unavailable, fetch_token
        from .tokencache import Cached

        try:
            token = fetch_token(self.endpoint, identity.resource, self.config.client_id,
                                self.config.retry_total, self.config.retry_backoff)
        except (Refused, Unavailable) as e:
            if current is not None and current.usable(time.time()):
                log.warning("could not refresh the token for %s (%s); the current one is "
                            "used until it expires", identity.resource, e)
                return current
            error = self._error(e, identity.resource)
            error.__cause__ = e
            if shared is not None:
                shared.record_failure(identity, type(error).__name__, str(error))
            raise _no_token(error) from error
        return Cached.new(token.token, token.expires_on)

    def _error(self, error: Exception, resource: str) -> WorkerError:
        from .connection import is_misconfiguration
        from .imds import Refused

        if isinstance(error, Refused):
            return AccessDenied(
                f"no token for {resource} with {identity_name(self.config)}: the "
                f"managed-identity endpoint refused ({error}); " + _token_fix(self.config))
        if getattr(error, "status", None) is None and is_misconfiguration(error):
            return ConfigError(f"no token for {resource}: {error}; check the endpoint "
                               f"{self.endpoint} (AZURE_POD_IDENTITY_AUTHORITY_HOST)",
                               code="config.identity")
        return RetryableError(f"no token for {resource}: {self._named(str(error))}; "
                              + self._retry_fix(getattr(error, "status", None)))

    def _named(self, message: str) -> str:
        """imds's message with the endpoint named, and what set it."""
        from .imds import IMDS_URL

        where = (f"{self.endpoint} (AZURE_POD_IDENTITY_AUTHORITY_HOST)" if self._setting()
                 else f"{IMDS_URL} (IMDS, the Azure VM's)")
        return message.replace("the managed-identity endpoint",
                               f"the managed-identity endpoint {where}", 1)

    def _setting(self) -> str:
        return ("AZURE_POD_IDENTITY_AUTHORITY_HOST"
                if self.config.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip() else "")

    def _retry_fix(self, status: Optional[int]) -> str:
        if status is None:  # no answer
            return _endpoint_fix(self.config, self._setting() or "the pool's identity settings")
        if status == 429:
            return ("the node's tasks asked faster than the endpoint allows: a retry of the "
                    "task may succeed (fewer task slots per node ask less)")
        return "it may be overloaded or restarting: a retry of the task may succeed"


def _no_token(error: WorkerError) -> Exception:
    """``error`` as azure-core's ClientAuthenticationError, which azure-core's pipelines
    raise as it is (a credential's failure); it keeps ``error``'s exit code and code, and
    ``token_error`` gives ``error`` back (raise it ``from error``)."""
    from azure.core.exceptions import ClientAuthenticationError

    wrapped = ClientAuthenticationError(message=str(error))
    wrapped.exit_code = error.exit_code  # type: ignore[attr-defined]
    wrapped.code = error.code  # type: ignore[attr-defined]
    return wrapped
