"""How the lake's REST calls (:mod:`worker.lake.rest`) are sent: bare urllib3, a bearer token,
retries.

A ranged read through azure-core's pipeline and requests costs about 0.45 ms of client CPU more
than the same request over urllib3 (pipeline policies, request preparation, two layers of
response wrapping; Python 3.8): per 64 KiB file that doubles the CPU, and staging a query's
column chunks pays it on every range, on the node's two cores that the query shares. So these
calls go out over urllib3 directly, keeping what the pipeline gave them:

- a connection pool as big as the store's parallelism, TLS verified against the same CA
  bundle requests would use (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else certifi's), the
  environment's proxy, the storage SDK's timeouts (20 s to connect, 60 s per read);
- the process's credential, its token cached until five minutes before it expires (as
  azure-core's ``BearerTokenCredentialPolicy`` does);
- ``retry_total`` retries of connection failures, answers cut off midway and transient
  statuses (408, 429, 500, 502-504, 506 and up, as azure-core's ``RetryPolicy``), after the
  service's ``Retry-After`` when it gives one, else ``retry_backoff`` x 1, 2, 4 ... seconds;
  but an untrusted certificate or a host name that does not resolve is a deployment
  mistake, reported at once (azure-core retried those too);
- failures raised as azure-core's exceptions, carrying the status and the service's error
  code, so :func:`worker.lake.azure._translate` maps them like the storage SDK's.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any, Collection, Mapping, NamedTuple, Optional
from urllib.parse import urlparse
from urllib.request import getproxies_environment, proxy_bypass_environment

from ..connection import ca_bundle, is_misconfiguration

#: The OAuth scope of Azure Storage, as the storage SDK asks for it.
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: The REST API version of every call (the storage SDK of the lock files supports it too).
API_VERSION = "2025-05-05"
BACKOFF_MAX = 60.0  # the longest sleep between two retries, in seconds
_CONNECT_TIMEOUT = 20.0  # the storage SDK's defaults
_READ_TIMEOUT = 60.0
_REFRESH_BEFORE = 300  # seconds before its expiry a token is replaced (azure-core's margin)
_USER_AGENT = "batch-worker (urllib3)"


class Answer(NamedTuple):
    """A service's answer: its status, headers (case-insensitive) and whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def is_transient(status: int) -> bool:
    """Whether a status is worth sending the request again for (azure-core's choice)."""
    return status in (408, 429, 500, 502, 503, 504) or status >= 506


class LakeHttp:
    """Sends the requests of one store, from any number of threads."""

    def __init__(self, credential: Any, pool_size: int, environ: Mapping[str, str],
                 account_url: str, retry_total: int, retry_backoff: float) -> None:
        self._pool = _pool_manager(pool_size, environ, account_url)
        self._token = _TokenCache(credential, STORAGE_SCOPE)
        self._retry_total = retry_total
        self._retry_backoff = retry_backoff

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"",
             ok: Collection[int] = (200,)) -> Answer:
        """The answer to ``method url``, once its status is one of ``ok``; else, after the
        retries, azure-core's error for the last failure."""
        import urllib3

        retries = 0
        while True:
            try:
                answer = self._send_once(method, url, headers, body)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                if retries >= self._retry_total or is_misconfiguration(e):
                    raise _connection_error(e, retries) from e
                wait = None
            else:
                if answer.status in ok:
                    return answer
                if not is_transient(answer.status) or retries >= self._retry_total:
                    raise http_error(answer)
                wait = retry_after_seconds(answer.headers)
            retries += 1
            time.sleep(wait if wait is not None else backoff_sleep(self._retry_backoff, retries))

    def _send_once(self, method: str, url: str, headers: Mapping[str, str],
                   body: bytes) -> Answer:
        full = {
            "Authorization": self._token.header(),
            "x-ms-version": API_VERSION,
            "x-ms-client-request-id": str(uuid.uuid4()),  # what support asks for
            "User-Agent": _USER_AGENT,
        }
        full.update(headers)
        response = self._pool.urlopen(method, url, body=body or None, headers=full,
                                      preload_content=False, retries=False, redirect=False)
        try:
            data = response.read()  # a body cut short raises (its Content-Length is enforced)
        finally:
            response.release_conn()
        return Answer(response.status, response.headers, data)

    def close(self) -> None:
        self._pool.clear()


class _TokenCache:
    """The credential's token for one scope, fetched again shortly before it expires."""

    def __init__(self, credential: Any, scope: str) -> None:
        self._credential = credential
        self._scope = scope
        self._lock = threading.Lock()
        self._token: Any = None

    def header(self) -> str:
        token = self._token
        if token is None or token.expires_on - time.time() < _REFRESH_BEFORE:
            with self._lock:
                if self._token is None or self._token.expires_on - time.time() < _REFRESH_BEFORE:
                    self._token = self._credential.get_token(self._scope)
                token = self._token
        return f"Bearer {token.token}"


def http_error(answer: Answer) -> Exception:
    """azure-core's error for a failed answer (as the storage SDK raises it), with the
    service's error code on it."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )

    code = answer.headers.get("x-ms-error-code")
    kind = {401: ClientAuthenticationError, 403: ClientAuthenticationError,
            404: ResourceNotFoundError}.get(answer.status, HttpResponseError)
    error = kind(message=f"Operation returned an invalid status {answer.status}"
                         + (f"\nErrorCode:{code}" if code else ""))
    error.status_code = answer.status
    error.error_code = code
    return error


def _connection_error(error: BaseException, retries: int) -> Exception:
    """azure-core's error for a request that got no whole answer: ``ServiceRequestError``
    when it never reached the service, ``ServiceResponseError`` when the answer broke off."""
    import urllib3
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    sent = not isinstance(error, (urllib3.exceptions.NewConnectionError,
                                  urllib3.exceptions.ConnectTimeoutError,
                                  urllib3.exceptions.SSLError, ConnectionRefusedError))
    kind = ServiceResponseError if sent else ServiceRequestError
    tries = f" ({retries + 1} tries)" if retries else ""
    return kind(f"{type(error).__name__}: {error}{tries}", error=error)


def backoff_sleep(backoff: float, retry: int) -> float:
    """Seconds to sleep before retry number ``retry`` (1, 2, ...): ``backoff * 2**(retry-1)``,
    +-20 % jitter (so threads throttled together come back apart), at most 60 s."""
    return min(BACKOFF_MAX, backoff * 2 ** max(0, retry - 1) * random.uniform(0.8, 1.2))


def retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (at most the backoff cap), if it has one."""
    try:
        return min(BACKOFF_MAX, max(0.0, float(headers.get("Retry-After", ""))))
    except ValueError:
        return None


def _pool_manager(pool_size: int, environ: Mapping[str, str], account_url: str) -> Any:
    """urllib3's pool for the account: connections for every thread (fewer would reconnect
    and redo TLS), the CA bundle requests would use, the environment's proxy for the host."""
    import urllib3

    bundle = ca_bundle(environ)
    if not isinstance(bundle, str):
        import certifi

        bundle = certifi.where()
    options = {
        "num_pools": 4, "maxsize": max(16, min(pool_size, 256)), "cert_reqs": "CERT_REQUIRED",
        "ca_certs": bundle, "retries": False,
        "timeout": urllib3.Timeout(connect=_CONNECT_TIMEOUT, read=_READ_TIMEOUT),
    }
    proxies = getproxies_environment()
    host = urlparse(account_url).hostname or ""
    proxy = proxies.get("https")
    if proxy and not proxy_bypass_environment(host, proxies):
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)
