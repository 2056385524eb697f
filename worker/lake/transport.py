"""The HTTP transport of the storage SDK's clients (:mod:`worker.lake.sdk`, big uploads): one
requests session per store, its pool as big as the store's parallelism, bodies read in big
blocks, the storage SDK's timeouts; and the sleeps between retries of every lake call.
"""

from __future__ import annotations

import random

from ..connection import ca_bundle

BACKOFF_MAX = 60.0  # the longest sleep between two retries, in seconds
_BLOCK = 256 * 1024  # bytes read from the socket at a time (the storage SDK's value)
_CONNECT_TIMEOUT = 20.0  # the storage SDK's defaults
_READ_TIMEOUT = 60.0


def backoff_sleep(backoff: float, retry: int) -> float:
    """Seconds to sleep before retry number ``retry`` (1, 2, ...): ``backoff * 2**(retry-1)``,
    +-20 % jitter (so threads throttled together come back apart), at most 60 s."""
    return min(BACKOFF_MAX, backoff * 2 ** max(0, retry - 1)) * random.uniform(0.8, 1.2)


def make_transport(pool_size: int, environ, account_url: str):
    """The SDK's requests transport with a pool as big as our parallelism (requests keeps
    10 connections per host; more threads would reconnect and redo TLS every time)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3.util.retry import Retry

    try:  # the adapter azure-core itself mounts (bigger socket blocks)
        from azure.core.pipeline.transport._bigger_block_size_http_adapters import (
            BiggerBlockSizeHTTPAdapter as Adapter,
        )
    except ImportError:  # pragma: no cover - older azure-core
        from requests.adapters import HTTPAdapter as Adapter
    session = _lean_session_class()()
    # requests re-reads the environment (proxies, CA bundle) on every request: a third of a
    # millisecond of CPU that bounds many small transfers (30% of a 64 KiB download here).
    # The session talks to one account host, so read them once, as requests would for it.
    session.proxies = requests.utils.get_environ_proxies(account_url)
    session.trust_env = False
    no_retries = Retry(total=False, redirect=False, raise_on_status=False)
    adapter = Adapter(pool_connections=4, pool_maxsize=max(16, min(pool_size, 256)),
                      max_retries=no_retries)
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    # The storage clients set these only on transports they build themselves: without them
    # a response body is read 4 KiB at a time and timeouts are azure-core's 300 s.
    return RequestsTransport(
        session=session, session_owner=True, connection_data_block_size=_BLOCK,
        connection_timeout=_CONNECT_TIMEOUT, read_timeout=_READ_TIMEOUT,
        connection_verify=ca_bundle(environ),  # read once: the session will not
    )


def _lean_session_class():
    """A ``requests.Session`` whose ``request`` prepares and sends only what the SDK needs.

    ``Session.request`` merges session defaults, cookies, hooks and environment settings and
    then ``Session.send`` extracts cookies and resolves redirects: none of it applies to the
    SDK's calls (azure-core disables redirects and handles them itself, storage sets no
    cookies), and it costs 0.6-1.0 ms of CPU per request here, a quarter of a small download.
    Any call that uses those features takes requests' own path.
    """
    import requests
    from requests.models import PreparedRequest

    class LeanSession(requests.Session):
        def request(self, method, url, params=None, data=None, headers=None, cookies=None,
                    files=None, auth=None, timeout=None, allow_redirects=True, proxies=None,
                    hooks=None, stream=None, verify=None, cert=None, json=None):
            if params or cookies or files or auth or allow_redirects or hooks or json is not None:
                return super().request(
                    method, url, params=params, data=data, headers=headers, cookies=cookies,
                    files=files, auth=auth, timeout=timeout, allow_redirects=allow_redirects,
                    proxies=proxies, hooks=hooks, stream=stream, verify=verify, cert=cert,
                    json=json)
            prepared = PreparedRequest()
            prepared.prepare(method=method.upper(), url=url, headers=headers, data=data)
            response = self.get_adapter(url).send(
                prepared, stream=bool(stream), timeout=timeout,
                verify=self.verify if verify is None else verify,
                cert=self.cert if cert is None else cert,
                proxies=self.proxies if proxies is None else proxies)
            if not stream:
                response.content  # noqa: B018 - read the body now, as Session.send does
            return response

    return LeanSession
