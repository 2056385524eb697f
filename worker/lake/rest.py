"""The lake's calls as plain REST requests through azure-core's pipeline: ranged reads (Get
Blob), small writes (Put Blob), renames (Path Create with a rename source), listings (List
Paths), properties (Get Blob Properties), folders made (Path Create) and deletes (Path Delete).

The storage SDK builds a client per call (a generated client for the path, options merged,
the response deserialised into properties, for reads a downloader and a second pass over the
body): per small file that costs more client CPU than moving its bytes (a Get Blob 2-3 ms
through the SDK against 0.9 ms here; a Put Blob 1.6 against 1.0 ms; a rename 2.0 against
1.0 ms, Python 3.8). A task moving hundreds of files, or staging a query's column chunks,
pays that on the node's two cores, so these calls go out as the REST call itself
through azure-core's ``PipelineClient``, the layer the storage SDK is built on: the lake's
transport (connection pool, TLS, timeouts), the process's credential through
``BearerTokenCredentialPolicy``, and azure-core's ``RetryPolicy`` with the worker's retry
settings (which also retries 429 after its ``Retry-After``). A read body that breaks off
midway is fetched again, as the SDK's downloader does. A task that lists, reads, writes
small files and commits thus never imports the storage SDK: about 0.3 s of its start on
Python 3.8 (only big uploads use it, :mod:`worker.lake.sdk`).

Failures are azure-core's own exceptions, carrying the service's status and error code, so
:func:`worker.lake.azure._translate` turns them into the same errors as the SDK's.
"""

from __future__ import annotations

import base64
import json
import time
from email.utils import parsedate_to_datetime
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import quote, urlencode

#: The OAuth scope of Azure Storage, as the storage SDK asks for it.
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: The REST API version of every call (the storage SDK of the lock files supports it too).
API_VERSION = "2025-05-05"
_PAGE = 5000  # paths per List Paths answer, the service's maximum


class LakeRest:
    """Reads, small writes and renames of the paths of one file system: ``container_url``
    is its Blob endpoint, ``filesystem_url`` its DFS endpoint (the same host on the
    emulator)."""

    def __init__(self, container_url: str, filesystem_url: str, credential: Any,
                 transport: Any, retry_total: int, retry_backoff: float,
                 backoff_max: float) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RequestIdPolicy,
            RetryPolicy,
        )

        self._base = container_url.rstrip("/")
        self._dfs = filesystem_url.rstrip("/")
        self._filesystem = self._dfs.rsplit("/", 1)[1]
        self._retry_total = retry_total
        self._retry_backoff = retry_backoff
        self._backoff_max = backoff_max
        self._client = PipelineClient(self._base, transport=transport, policies=[
            RequestIdPolicy(),  # x-ms-client-request-id: what support asks for
            HeadersPolicy({"x-ms-version": API_VERSION}),
            RetryPolicy(retry_total=retry_total, retry_backoff_factor=retry_backoff,
                        retry_backoff_max=backoff_max),
            BearerTokenCredentialPolicy(credential, STORAGE_SCOPE),
        ])

    def read(self, path: str, offset: int, length: int, etag: Optional[str] = None) -> bytes:
        """Bytes ``offset`` to ``offset + length`` of ``path`` (fewer at the end of the file,
        none past it); with ``etag``, only of that version (else 412 ConditionNotMet)."""
        return self.read_head(path, length, offset, etag)[0]

    def read_head(self, path: str, length: int, offset: int = 0,
                  etag: Optional[str] = None) -> Tuple[bytes, int, Optional[str]]:
        """Like :meth:`read`, and also the file's size and etag, from the same response:
        the first piece of a download says how many more there are and pins their version."""
        from azure.core.exceptions import IncompleteReadError, ServiceResponseError
        from azure.core.rest import HttpRequest

        url = f"{self._base}/{_quote(path)}"
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        if etag:
            headers["If-Match"] = f'"{etag}"'
        broken = 0
        while True:
            response = self._client.send_request(HttpRequest("GET", url, headers=headers),
                                                 stream=True)
            try:
                if response.status_code == 416:  # at or past the end (an empty file: 0 of 0)
                    return b"", _total_size(response, 0), _etag(response)
                if response.status_code not in (200, 206):
                    raise _http_error(response)
                data = response.read()
                return data, _total_size(response, offset + len(data)), _etag(response)
            except (ServiceResponseError, IncompleteReadError) as e:
                broken += 1  # the connection broke mid-body: the retry policy saw a 206
                if broken > self._retry_total:
                    raise ServiceResponseError(f"{e} ({broken} times)", error=e) from e
                time.sleep(min(self._backoff_max, self._retry_backoff * 2 ** (broken - 1)))
            finally:
                response.close()

    def put(self, path: str, data: bytes, md5: Optional[str] = None,
            exclusive: bool = False) -> None:
        """Put Blob: create or replace ``path`` (its parents too, on a hierarchical
        namespace) with ``data`` in one request; ``md5`` (hex) is stored as its Content-MD5;
        ``exclusive`` fails with 409 if it exists (``If-None-Match: *``)."""
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
        if md5:
            headers["x-ms-blob-content-md5"] = base64.b64encode(bytes.fromhex(md5)).decode()
        if exclusive:
            headers["If-None-Match"] = "*"
        self._send("PUT", f"{self._base}/{_quote(path)}", headers, data, 201)

    def rename(self, src: str, dst: str, exclusive: bool) -> None:
        """Move a file or folder of this file system; ``exclusive``: only if ``dst`` does not
        exist (409 PathAlreadyExists). The destination's parent must exist."""
        headers = {"x-ms-rename-source": f"/{quote(self._filesystem)}/{_quote(src)}"}
        if exclusive:
            headers["If-None-Match"] = "*"
        self._send("PUT", f"{self._dfs}/{_quote(dst)}?mode=legacy", headers, b"", 201)

    def properties(self, path: str) -> Dict[str, Any]:
        """Get Blob Properties of a file or folder: ``size``, ``etag``, ``modified`` (epoch
        seconds or None), ``is_dir``, ``md5`` (hex or None)."""
        response = self._send("HEAD", f"{self._base}/{_quote(path)}", {}, b"", 200)
        headers = response.headers
        md5 = headers.get("Content-MD5")
        return {
            "size": int(headers.get("Content-Length") or 0),
            "etag": _etag(response),
            "modified": _timestamp(headers.get("Last-Modified")),
            "is_dir": (headers.get("x-ms-meta-hdi_isfolder") or "").lower() == "true",
            "md5": base64.b64decode(md5).hex() if md5 else None,
        }

    def list_paths(self, directory: str, recursive: bool) -> Iterator[Dict[str, Any]]:
        """List Paths below ``directory`` ("" for the root), page by page: each entry's
        ``name``, ``size``, ``is_dir``, ``etag`` and ``modified``."""
        query = {"resource": "filesystem", "recursive": "true" if recursive else "false",
                 "maxResults": str(_PAGE)}
        if directory:
            query["directory"] = directory
        continuation = None
        while True:
            if continuation:
                query["continuation"] = continuation
            response = self._send("GET", f"{self._dfs}?{urlencode(query)}", {}, b"", 200)
            for entry in json.loads(response.text() or "{}").get("paths", []):
                yield {
                    "name": entry["name"],
                    "size": int(entry.get("contentLength") or 0),
                    "is_dir": str(entry.get("isDirectory", "")).lower() == "true",
                    "etag": (entry.get("etag") or "").strip('"') or None,
                    "modified": _timestamp(entry.get("lastModified")),
                }
            continuation = response.headers.get("x-ms-continuation")
            if not continuation:
                return

    def make_dir(self, path: str) -> None:
        """Path Create of a folder (and its missing parents); an existing one stays."""
        self._send("PUT", f"{self._dfs}/{_quote(path)}?resource=directory", {}, b"", 201)

    def delete(self, path: str, recursive: bool) -> None:
        """Path Delete of a file, an empty folder, or with ``recursive`` a whole folder (which
        the service may delete in several calls, each answer naming where to go on)."""
        query = {"recursive": "true" if recursive else "false"}
        while True:
            response = self._send("DELETE", f"{self._dfs}/{_quote(path)}?{urlencode(query)}",
                                  {}, b"", 200)
            continuation = response.headers.get("x-ms-continuation")
            if not continuation:
                return
            query["continuation"] = continuation

    def _send(self, method: str, url: str, headers: Dict[str, str], body: bytes,
              expected: int) -> Any:
        from azure.core.rest import HttpRequest

        response = self._client.send_request(
            HttpRequest(method, url, headers=headers, content=body))
        if response.status_code != expected:
            raise _http_error(response)
        return response

    def close(self) -> None:
        self._client.close()


def _quote(path: str) -> str:
    return quote(path, safe="~/")


def _http_error(response: Any) -> Exception:
    """azure-core's error for a failed call, with the service's error code on it."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )

    response.read()
    kind = {401: ClientAuthenticationError, 403: ClientAuthenticationError,
            404: ResourceNotFoundError}.get(response.status_code, HttpResponseError)
    error = kind(response=response)
    error.error_code = _error_code(response)
    return error


def _error_code(response: Any) -> Optional[str]:
    return response.headers.get("x-ms-error-code")


def _total_size(response: Any, default: int) -> int:
    """The file's size from ``Content-Range: bytes 0-99/1234`` (or ``bytes */1234``)."""
    total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
    return int(total) if total.isdigit() else default


def _timestamp(value: Optional[str]) -> Optional[float]:
    """Epoch seconds of an HTTP date (``Thu, 01 Jan 2026 10:00:00 GMT``), if there is one."""
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def _etag(response: Any) -> Optional[str]:
    value = response.headers.get("ETag")
    return value.strip('"') if value else None
