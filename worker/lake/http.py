"""How the lake's REST calls (:mod:`worker.lake.rest`) are sent: azure-core's ``PipelineClient``
with its standard policies, over a lean urllib3 transport of our own
(:mod:`worker.lake.transport`).

The policies, in the order azure-core's clients use them:

- ``RequestIdPolicy``: one ``x-ms-client-request-id`` per call, kept across its retries
  (what Azure support asks for, beside the service's ``x-ms-request-id``);
- ``UserAgentPolicy``: ``batch-worker/VERSION`` before azure-core's own;
- ``RetryPolicy``: ``WORKER_RETRY_TOTAL`` retries of connection failures, answers cut off
  midway and transient statuses (408, 429, 500, 502-504, 506 and up), the first at once,
  then ``WORKER_RETRY_BACKOFF`` x 2, 4 ... seconds, or after what the service asks:
  ``Retry-After`` in seconds or as an HTTP date, ``retry-after-ms``, ``x-ms-retry-after-ms``.
  Every method is retried, PATCH (appends, flushes) too: each lake call is idempotent in
  effect (a retry that meets what its lost first try did counts as done; see
  :mod:`worker.lake.commit`). An untrusted certificate, a host name that does not resolve
  or a proxy that refuses its credentials is a deployment mistake, reported at once;
- ``BearerTokenCredentialPolicy``: the process's credential (``worker.identity``), its
  token kept until five minutes before it expires; a 401 with a challenge fetches a new
  token and sends the request once more;
- ``HttpLoggingPolicy``: each request and answer at DEBUG (``WORKER_LOG_LEVEL=DEBUG``), on
  the logger ``worker.lake.http``, every header but a known-safe few redacted.

Failures are azure-core's exceptions, carrying the status, the service's error code and
message, and both request ids (:func:`http_error`), so :func:`worker.lake.azure._translate`
maps them into the worker's errors.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any, Collection, Dict, Mapping, Optional

from azure.core import PipelineClient
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HttpLoggingPolicy,
    RequestIdPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import HttpRequest

from ..connection import is_misconfiguration, refused_locally
from ..version import __version__
from .transport import Answer, LakeTransport

#: The OAuth scope of Azure Storage, as the storage SDK asks for it.
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: The REST API version of every call (the storage SDK of the lock files supports it too).
API_VERSION = "2025-05-05"
BACKOFF_MAX = 60  # the longest backoff between two retries, in seconds
USER_AGENT = f"batch-worker/{__version__}"
_METHODS = frozenset(["HEAD", "GET", "PUT", "DELETE", "PATCH", "POST"])
_SAFE_HEADERS = ("x-ms-version", "x-ms-continuation", "x-ms-rename-source", "Range",
                 "Content-Range", "x-ms-blob-type", "x-ms-resource-type", "Content-MD5",
                 "x-ms-content-md5", "x-ms-blob-content-md5", "Content-Encoding",
                 "x-ms-namespace-enabled", "x-ms-is-hns-enabled")
_SAFE_QUERY = ("resource", "recursive", "directory", "maxResults", "action", "position",
               "comp", "mode", "restype", "paginated")

log = logging.getLogger(__name__)


def is_transient(status: int) -> bool:
    """Whether a status is worth sending the request again for (azure-core's choice)."""
    return status in (408, 429, 500, 502, 503, 504) or status >= 506


class LakeHttp:
    """Sends the requests of one store, from any number of threads."""

    def __init__(self, credential: Any, pool_size: int, environ: Mapping[str, str],
                 account_url: str, retry_total: int, retry_backoff: float) -> None:
        retries = dict(retry_total=retry_total, retry_connect=retry_total,
                       retry_read=retry_total, retry_status=retry_total,
                       retry_backoff_factor=retry_backoff, retry_backoff_max=BACKOFF_MAX)
        policies = [
            RequestIdPolicy(),
            UserAgentPolicy(user_agent=USER_AGENT),
            _Retry(**retries),
            _Bearer(credential, STORAGE_SCOPE),
            _http_logging(),
        ]
        # The client's own pipeline, kept at hand: its context says whether a call was
        # retried (what generated SDK clients read through ``client._pipeline``).
        self._pipeline: Any = Pipeline(LakeTransport(pool_size, environ, account_url),
                                       policies)
        self._client: Any = PipelineClient(account_url, pipeline=self._pipeline)

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"",
             ok: Collection[int] = (200,), ok_if_retried: Collection[int] = ()) -> Answer:
        """The answer to ``method url``, once its status is one of ``ok``, or one of
        ``ok_if_retried`` after a retry (an earlier try may have been applied, its answer
        lost: a retried delete's 404); else, after the retries, azure-core's error for the
        last answer (or the last connection failure)."""
        request = HttpRequest(method, url, headers, data=body or None)
        request.headers["x-ms-version"] = API_VERSION
        response = self._pipeline.run(request, retry_on_methods=_METHODS,
                                      request_id=str(uuid.uuid4()))
        answer = response.http_response
        status = answer.status_code
        if status in ok or (status in ok_if_retried and response.context.get("history")):
            return answer
        raise http_error(answer)

    def close(self) -> None:
        self._client.close()


class _Retry(RetryPolicy):
    """azure-core's retries, except of what retrying cannot fix: an untrusted certificate,
    a host name that does not resolve, a proxy that refuses the credentials, a port on this
    machine where nothing listens (an emulator not running, or the wrong port)."""

    def increment(self, settings: Dict[str, Any], response: Any = None,
                  error: Optional[Exception] = None) -> bool:
        if error is not None and (is_misconfiguration(error) or
                                  refused_locally(error, _url_of(response))):
            return False
        return super().increment(settings, response=response, error=error)


def _url_of(pipeline_request: Any) -> str:
    """The URL of the request azure-core's retry policy passes as ``response`` on an error."""
    return str(getattr(getattr(pipeline_request, "http_request", None), "url", "") or "")


class _Bearer(BearerTokenCredentialPolicy):
    """azure-core's bearer token policy, with one fetch at a time (threads that start
    together would each ask the identity endpoint), and a new token after a 401 whose
    challenge is Azure Storage's plain one (the base class answers claims challenges only):
    a token revoked or expired early gets one more try with a fresh one."""

    def __init__(self, credential: Any, *scopes: str) -> None:
        super().__init__(credential, *scopes)
        self._lock = threading.Lock()

    def on_request(self, request: Any) -> None:
        with self._lock:
            super().on_request(request)

    def on_challenge(self, request: Any, response: Any) -> bool:
        if super().on_challenge(request, response):
            return True
        with self._lock:
            self.authorize_request(request, *self._scopes)
        return True


class _DebugLog(logging.LoggerAdapter):
    """A logger whose INFO is DEBUG: azure-core's HTTP logging writes at INFO, which would
    put two records per request in every task's log."""

    def isEnabledFor(self, level: int) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.logger.debug(msg, *args, **kwargs)


def _http_logging() -> HttpLoggingPolicy:
    policy = HttpLoggingPolicy(logger=_DebugLog(log, {}))  # type: ignore[arg-type]
    policy.allowed_header_names.update(_SAFE_HEADERS)
    policy.allowed_query_params.update(_SAFE_QUERY)
    return policy


def http_error(answer: Answer) -> HttpResponseError:
    """azure-core's error for a failed answer (as the storage SDK raises it), carrying the
    service's error code and message and both request ids (:func:`service_details`, as
    ``service_details`` on the error)."""
    kind = {401: ClientAuthenticationError, 403: ClientAuthenticationError,
            404: ResourceNotFoundError}.get(answer.status_code, HttpResponseError)
    details = service_details(answer)
    error = kind(message=f"Operation returned an invalid status {answer.status_code}"
                         + (f"\nErrorCode:{details['error_code']}" if details["error_code"]
                            else ""), response=answer)
    error.error_code = details["error_code"]
    error.service_details = details  # type: ignore[attr-defined]
    return error


def service_details(answer: Answer) -> Dict[str, Any]:
    """What the service said of a failure: status, error code and message (from the
    ``x-ms-error-code`` header and the JSON or XML body), ``x-ms-request-id`` and our
    ``x-ms-client-request-id``."""
    headers = answer.headers
    code, message = _body_error(answer.body())
    request_headers = answer.request.headers
    return {
        "status": answer.status_code,
        "error_code": headers.get("x-ms-error-code") or code,
        "message": message,
        "request_id": headers.get("x-ms-request-id"),
        "client_request_id": request_headers.get("x-ms-client-request-id"),
    }


def _body_error(body: bytes) -> tuple:
    """(code, first line of the message) from the DFS API's JSON or the Blob API's XML."""
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    if text.startswith("{"):
        try:
            error = json.loads(text).get("error") or {}
        except (ValueError, AttributeError):
            return None, None
        return error.get("code"), _first(error.get("message"))
    if text.startswith("<"):
        from xml.etree import ElementTree

        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            return None, None
        return root.findtext("Code"), _first(root.findtext("Message"))
    return None, None


def _first(message: Optional[str]) -> Optional[str]:
    """The message without the service's ``RequestId:``/``Time:`` lines."""
    return message.strip().splitlines()[0].strip() if message and message.strip() else None
