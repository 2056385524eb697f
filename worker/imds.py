"""The node's managed-identity endpoint (IMDS): one token request, and its retries.

``GET {endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=R&client_id=C``
with the header ``Metadata: true`` answers ``{"access_token", "expires_on", ...}``; the
endpoint is ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` (as azure-identity reads it: the emulators
set it), else IMDS's ``http://169.254.169.254``.

A node's tasks ask through this module rather than azure-identity's
``ManagedIdentityCredential``, for three reasons measured or read in issue 27: azure-identity
words a throttled answer (429, whose body IMDS writes as ``invalid_request``) and an unknown
identity (400 ``invalid_request``) the same way, so one could not tell a retry from a
misconfiguration; its retries of IMDS sleep without jitter, so throttled processes come back
together; and importing it costs 0.13-0.20 s of every task's start on Python 3.8. The
protocol is one GET.

Retries, as README promises for every token request: a connection that fails and the
statuses Microsoft's IMDS guidance says to retry (404 and 410 while IMDS updates, 408, 429,
5xx) are retried ``retry_total`` times, after the answer's ``Retry-After`` when it has one
(IMDS sends none today) plus up to 20%, else ``retry_backoff`` x 1, 2, 4 ... seconds +-20%
(at most 60 s). A 429 is throttling whatever its body says. What the endpoint refuses (400,
401, 403: an identity the VM does not have, a bad request) is not retried.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from typing import Callable, Dict, NamedTuple, Optional
from urllib.parse import urlencode, urlsplit

IMDS_URL = "http://169.254.169.254"
TOKEN_PATH = "/metadata/identity/oauth2/token"
API_VERSION = "2018-02-01"
BACKOFF_MAX = 60.0
_TIMEOUT = 10.0  # seconds to connect, and for each read of the answer
_RETRIED = (404, 408, 410, 429)
_ENDPOINT = "the managed-identity endpoint"


class Token(NamedTuple):
    """A bearer token and when it expires (epoch seconds): azure-core's ``AccessToken``."""

    token: str
    expires_on: int


class Refused(Exception):
    """The endpoint refused the request: retrying cannot help (an unknown identity)."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{status} {code}: {description}".strip())
        self.status, self.code, self.description = status, code, description


class Unavailable(Exception):
    """No token after the retries: the endpoint throttled, failed or did not answer.
    ``status`` is the last answer's (None: no answer; the cause is the connection error)."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


def endpoint_url(environ: Dict[str, str]) -> str:
    """The identity endpoint this process asks (no trailing slash)."""
    return (environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip() or IMDS_URL).rstrip("/")


def resource_of(scope: str) -> str:
    """The resource IMDS wants for an OAuth scope: ``https://x/.default`` -> ``https://x``."""
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


def fetch_token(endpoint: str, resource: str, client_id: Optional[str], retry_total: int,
                retry_backoff: float, sleep: Callable[[float], None] = time.sleep) -> Token:
    """A token for ``resource`` from ``endpoint``, retried as the module says."""
    query = {"api-version": API_VERSION, "resource": resource}
    if client_id:
        query["client_id"] = client_id
    retries = 0
    while True:
        try:
            status, headers, body = _get(endpoint, TOKEN_PATH + "?" + urlencode(query))
        except (OSError, http.client.HTTPException) as e:
            if retries >= retry_total:
                raise Unavailable(f"{_ENDPOINT} did not answer ({type(e).__name__}: {e})"
                                  + _tries(retries)) from e
            wait = backoff_sleep(retry_backoff, retries + 1)
        else:
            if status == 200:
                return _token(body)
            code, description = _error(body)
            if not _transient(status):
                raise Refused(status, code, description)
            if retries >= retry_total:
                raise Unavailable(f"{_why(status)} ({status} {_detail(status, code, description)})"
                                  + _tries(retries), status)
            wait = _wait(headers, retry_backoff, retries + 1)
        retries += 1
        sleep(wait)


def backoff_sleep(backoff: float, retry: int) -> float:
    """Seconds before retry number ``retry`` (1, 2, ...): ``backoff * 2**(retry-1)``, +-20%
    jitter (processes throttled together come back apart), at most 60 s."""
    return min(BACKOFF_MAX, backoff * 2 ** max(0, retry - 1) * random.uniform(0.8, 1.2))


def _wait(headers: Dict[str, str], backoff: float, retry: int) -> float:
    """The answer's ``Retry-After`` plus up to 20% jitter, else the backoff."""
    try:
        after = float(headers.get("retry-after", ""))
    except ValueError:
        return backoff_sleep(backoff, retry)
    return min(BACKOFF_MAX, max(0.0, after) * random.uniform(1.0, 1.2))


def _transient(status: int) -> bool:
    return status in _RETRIED or status >= 500


def _why(status: int) -> str:
    return _ENDPOINT + (" throttled the requests" if status == 429 else " failed")


def _detail(status: int, code: str, description: str) -> str:
    """The error's code and words; a 429's code is left out (IMDS says invalid_request)."""
    if status == 429:
        return description or code
    return ": ".join(part for part in (code, description) if part)


def _tries(retries: int) -> str:
    return f", after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""


def _get(endpoint: str, target: str):
    """``(status, lower-case headers, body)`` of one GET."""
    parts = urlsplit(endpoint)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=_TIMEOUT)
    try:
        connection.request("GET", parts.path.rstrip("/") + target,
                           headers={"Metadata": "true", "User-Agent": "batch-worker"})
        answer = connection.getresponse()
        body = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body
    finally:
        connection.close()


def _token(body: bytes) -> Token:
    try:
        payload = json.loads(body)
        token = str(payload["access_token"])
        if payload.get("expires_on"):
            expires_on = int(float(payload["expires_on"]))
        else:
            expires_on = int(time.time()) + int(float(payload["expires_in"]))
    except (ValueError, KeyError, TypeError) as e:
        raise Unavailable(f"{_ENDPOINT} answered 200 without a token ({type(e).__name__})",
                          200) from None
    return Token(token, expires_on)


def _error(body: bytes):
    """``(error, error_description)`` of an OAuth error body; empty strings if it has none."""
    try:
        payload = json.loads(body)
        return str(payload.get("error", "")), str(payload.get("error_description", ""))
    except (ValueError, AttributeError):
        return "", body[:200].decode("utf-8", "replace").strip()
