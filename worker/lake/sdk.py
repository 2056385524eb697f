"""The storage SDK's clients, for what the plain REST calls do not cover: big uploads (the
SDK's chunked, parallel upload) and setting a big upload's Content-MD5 afterwards.

Imported only when a task needs them, so a task that lists, reads, writes small files and
commits never loads the storage SDK (about 0.3 s of a task's start on Python 3.8).

Retries are the SDK's own: the storage policy (``ExponentialRetry``) with ``retry_total``
retries and sleeps of ``retry_backoff`` x 1, 2, 4 ... seconds (the SDK default sleeps 18-42 s),
both from the configuration. The storage policy does not retry 429; :class:`BatchRetry` does,
honouring ``Retry-After``, so one throttled request does not fail a task.
"""

from __future__ import annotations

from typing import Any, Optional

from azure.storage.filedatalake import ExponentialRetry

from .http import retry_after_seconds
from .transport import backoff_sleep, make_transport


class BatchRetry(ExponentialRetry):
    """The storage SDK's exponential retry with sleeps that suit batch work and tests:
    ``backoff * 2**(n-1)`` seconds (+-20 % jitter, at most 60 s) before retry n."""

    def __init__(self, backoff: float, retry_total: int) -> None:
        super().__init__(initial_backoff=0, increment_base=2, retry_total=retry_total,
                         random_jitter_range=0)
        self.backoff = backoff

    def get_backoff_time(self, settings: Any) -> float:
        return self._sleep(settings["count"])

    def _sleep(self, count: int) -> float:
        return backoff_sleep(self.backoff, count)

    def send(self, request: Any) -> Any:
        """The storage policy's retries, and around them retries of 429 Too Many Requests
        (which the storage policy never retries), after ``Retry-After`` when the service
        says how long, else the same backoff: ``retry_total`` throttled answers at most."""
        body = request.http_request.body
        start = body.tell() if hasattr(body, "tell") and hasattr(body, "seek") else None
        throttled = 0
        while True:
            response = super().send(request)
            if response.http_response.status_code != 429 or throttled >= self.total_retries:
                return response
            if hasattr(body, "read") and start is None:
                return response  # a stream that cannot be rewound cannot be sent again
            throttled += 1
            request.context.transport.sleep(retry_after(response) or self._sleep(throttled))
            if start is not None:
                body.seek(start)


def retry_after(response: Any) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (at most the backoff cap), if it has one."""
    return retry_after_seconds(response.http_response.headers)


def client_options(config, account_url: str) -> dict:
    """Keyword arguments for the storage clients: retries, transfer sizes, connection pool."""
    chunk = config.lake_chunk_size
    return {
        "retry_policy": BatchRetry(config.retry_backoff, config.retry_total),
        "max_single_get_size": chunk,
        "max_chunk_get_size": chunk,
        "transport": make_transport(
            config.transfer_concurrency * config.lake_file_concurrency, config.environ, account_url
        ),
    }


def file_system_client(config, account_url: str, filesystem: str, credential: Any):
    """The service client and its file system's client, sharing one transport."""
    from azure.storage.filedatalake import DataLakeServiceClient

    service = DataLakeServiceClient(account_url, credential=credential,
                                    **client_options(config, account_url))
    return service, service.get_file_system_client(filesystem)
