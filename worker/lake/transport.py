"""The lowest layer of the lake's HTTP pipeline: an azure-core ``HttpTransport`` over urllib3.

azure-core's own transport is built on requests, whose request preparation and response
wrapping cost about 0.45 ms of client CPU per call on Python 3.8: per 64 KiB file that
doubles the CPU, and staging a query's column chunks pays it on every range. So the
pipeline (:mod:`worker.lake.http`: request id, user agent, retries, token, logging) stays
azure-core's, and only the layer that moves bytes is ours. It gives what requests gave:

- a connection pool as big as the store's parallelism, TLS verified against the CA bundle
  requests would use (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else certifi's), the
  storage SDK's timeouts (20 s to connect, 60 s per read);
- the environment's proxy (``HTTPS_PROXY``, ``NO_PROXY``), with the ``user:password@`` of
  its URL sent as ``Proxy-Authorization`` (urllib3 does not do that by itself);
- bodies as stored: ``Content-Encoding`` is never undone (a range of a gzip file is those
  bytes of the file);
- failures as azure-core's: ``ServiceRequestError`` when the request never reached the
  service, ``ServiceResponseError`` when its answer broke off, for the retry policy.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, Mapping, MutableMapping, Optional, Tuple
from urllib.parse import unquote, urlparse
from urllib.request import getproxies_environment, proxy_bypass_environment

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport

from ..connection import ca_bundle

CONNECT_TIMEOUT = 20.0  # the storage SDK's defaults
READ_TIMEOUT = 60.0


class LakeTransport(HttpTransport):
    """Sends the pipeline's requests over one urllib3 pool, from any number of threads."""

    def __init__(self, pool_size: int, environ: Mapping[str, str], account_url: str) -> None:
        import urllib3

        self._pool = _pool_manager(pool_size, environ, account_url)
        self._no_retries = urllib3.Retry(False, redirect=False)  # built once, not per call
        self._pools: Dict[str, Any] = {}  # origin -> its connection pool (blob, dfs)
        self._errors = (urllib3.exceptions.HTTPError, OSError)
        self._unsent = (urllib3.exceptions.NewConnectionError,
                        urllib3.exceptions.ConnectTimeoutError,
                        urllib3.exceptions.SSLError, urllib3.exceptions.ProxyError,
                        ConnectionRefusedError)

    def send(self, request: HttpRequest, **kwargs: Any) -> "Answer":
        try:
            pool, target = self._route(request.url)
            response = pool.urlopen(
                request.method, target, body=request.data, headers=request.headers,
                preload_content=False, decode_content=False, retries=self._no_retries,
                redirect=False, assert_same_host=False)
            try:
                body = response.read(decode_content=False)  # a body cut short raises
            finally:
                response.release_conn()
        except self._errors as e:
            kind = ServiceRequestError if isinstance(e, self._unsent) else ServiceResponseError
            failed = kind(f"{type(e).__name__}: {e}", error=e)
            failed.service_details = {  # type: ignore[attr-defined]
                "client_request_id": request.headers.get("x-ms-client-request-id")}
            raise failed from e
        return Answer(request, response.status, response.reason, response.headers, body)

    def _route(self, url: str) -> Tuple[Any, str]:
        """The connection pool of the URL's origin and the target to ask it for. The pool
        manager would find the same pool, parsing the URL twice per request to do so."""
        scheme, _, rest = url.partition("://")
        end = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0] or [len(rest)])
        origin, target = rest[:end], rest[end:]
        key = f"{scheme}://{origin}"
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools.setdefault(key, self._pool.connection_from_url(key))
        return pool, target if target.startswith("/") else "/" + target

    def open(self) -> None:
        """Connections are opened by the pool as requests need them."""

    def close(self) -> None:
        self._pools.clear()
        self._pool.clear()

    def __enter__(self) -> "LakeTransport":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()


class Answer(HttpResponse):
    """A whole answer: status, headers (case-insensitive) and body, read before the
    connection went back to the pool (the lake's answers are small or ranged)."""

    def __init__(self, request: HttpRequest, status: int, reason: str,
                 headers: MutableMapping[str, str], body: bytes) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content_type = headers.get("Content-Type")
        self._body = body

    def body(self) -> bytes:
        return self._body


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
        "timeout": urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
    }
    proxy = https_proxy(account_url)
    if proxy is None:
        return urllib3.PoolManager(**options)
    url, headers = proxy
    return urllib3.ProxyManager(url, proxy_headers=headers, **options)


def https_proxy(account_url: str) -> Optional[tuple]:
    """The environment's proxy for the account's host, as (URL without credentials, headers
    carrying them), or None when there is none or ``NO_PROXY`` names the host. The
    credentials never appear in a URL that an error message could quote."""
    proxies = getproxies_environment()
    proxy = proxies.get("https")
    host = urlparse(account_url).hostname or ""
    if not proxy or proxy_bypass_environment(host, proxies):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy  # as requests reads a bare host:port
    parsed = urlparse(proxy)
    headers = {}
    if parsed.username is not None:
        user_pass = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
        try:
            raw = user_pass.encode("latin-1")  # as requests encodes Basic credentials
        except UnicodeEncodeError:
            raw = user_pass.encode("utf-8")
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(raw).decode()
    netloc = parsed.netloc.rpartition("@")[2]
    return f"{parsed.scheme}://{netloc}", headers
