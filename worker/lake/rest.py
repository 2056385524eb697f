"""The lake's calls as plain REST requests: ranged reads (Get Blob), small writes (Put Blob),
big uploads (Path Create, Path Update appends in parallel, a flush), renames (Path Create
with a rename source), listings (List Paths), properties (Get Blob Properties, Set Blob
Properties for a Content-MD5), folders made (Path Create), deletes (Path Delete) and the
account's kind (Get Account Information).

The storage SDK builds a client per call (a generated client for the path, options merged,
the response deserialised into properties, for reads a downloader and a second pass over the
body): per small file that costs more client CPU than moving its bytes (a Get Blob 2-3 ms
through the SDK, a Put Blob 1.6 ms, a rename 2.0 ms on Python 3.8). A task moving hundreds of
files, or staging a query's column chunks, pays that on the node's two cores, so these calls
are the REST call itself, sent by :class:`worker.lake.http.LakeHttp` (azure-core's pipeline
over a lean urllib3 transport: request ids, the process's token, retries). A read body that
breaks off midway is fetched again, as the SDK's downloader does. A task never imports the
storage SDK: about 0.3 s of its start on Python 3.8.

Failures are azure-core's own exceptions, carrying the service's status and error code, so
:func:`worker.lake.azure._translate` turns them into the same errors as the SDK's.
"""

from __future__ import annotations

import base64
import json
from email.utils import parsedate_to_datetime
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import quote, urlencode

from .http import LakeHttp
from .transport import Answer

_PAGE = 5000  # paths per List Paths answer, the service's maximum


class LakeRest:
    """Reads, small writes and renames of the paths of one file system: ``container_url``
    is its Blob endpoint, ``filesystem_url`` its DFS endpoint (the same host on the
    emulator)."""

    def __init__(self, container_url: str, filesystem_url: str, http: LakeHttp) -> None:
        self._base = container_url.rstrip("/")
        self._dfs = filesystem_url.rstrip("/")
        self._filesystem = self._dfs.rsplit("/", 1)[1]
        self._http = http

    def read(self, path: str, offset: int, length: int, etag: Optional[str] = None) -> bytes:
        """Bytes ``offset`` to ``offset + length`` of ``path`` (fewer at the end of the file,
        none past it); with ``etag``, only of that version (else 412 ConditionNotMet)."""
        return self.read_head(path, length, offset, etag)[0]

    def read_head(self, path: str, length: int, offset: int = 0,
                  etag: Optional[str] = None) -> Tuple[bytes, int, Optional[str]]:
        """Like :meth:`read`, and also the file's size and etag, from the same response:
        the first piece of a download says how many more there are and pins their version."""
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        if etag:
            headers["If-Match"] = f'"{etag}"'
        answer = self._http.send("GET", f"{self._base}/{_quote(path)}", headers,
                                 ok=(200, 206, 416))
        if answer.status_code == 416:  # at or past the end (an empty file: 0 of 0)
            return b"", _total_size(answer, 0), _etag(answer)
        return answer.body(), _total_size(answer, offset + len(answer.body())), _etag(answer)

    def put(self, path: str, data: bytes, md5: Optional[str] = None,
            exclusive: bool = False) -> None:
        """Put Blob: create or replace ``path`` (its parents too, on a hierarchical
        namespace) with ``data`` in one request; ``md5`` (hex) is stored as its Content-MD5;
        ``exclusive`` fails with 409 if it exists (``If-None-Match: *``)."""
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
        if md5:
            headers["x-ms-blob-content-md5"] = _base64_md5(md5)
        if exclusive:
            headers["If-None-Match"] = "*"
        self._send("PUT", f"{self._base}/{_quote(path)}", headers, data, 201)

    def create_file(self, path: str) -> None:
        """Path Create of an empty file (and its missing parents), replacing one that exists:
        the start of a big upload, whose pieces then :meth:`append` and :meth:`flush`."""
        self._send("PUT", f"{self._dfs}/{_quote(path)}?resource=file", {}, b"", 201)

    def append(self, path: str, position: int, data: bytes) -> None:
        """Path Update (append): ``data`` at ``position``, uncommitted until the flush; pieces
        may be appended in any order, and one sent again lands in the same place."""
        self._send("PATCH", f"{self._dfs}/{_quote(path)}?action=append&position={position}",
                   {"Content-Type": "application/octet-stream"}, data, 202)

    def flush(self, path: str, length: int, md5: Optional[str] = None) -> None:
        """Path Update (flush): commit the first ``length`` appended bytes as the file's
        content, with ``md5`` (hex) as its Content-MD5."""
        headers = {"x-ms-content-md5": _base64_md5(md5)} if md5 else {}
        self._send("PATCH", f"{self._dfs}/{_quote(path)}?action=flush&position={length}",
                   headers, b"", 200)

    def set_md5(self, path: str, md5: str) -> None:
        """Set Blob Properties: ``md5`` (hex) as the file's Content-MD5 (for a big upload
        hashed while it moved; the other content headers are cleared, as they were unset)."""
        self._send("PUT", f"{self._base}/{_quote(path)}?comp=properties",
                   {"x-ms-blob-content-md5": _base64_md5(md5)}, b"", 200)

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
        answer = self._send("HEAD", f"{self._base}/{_quote(path)}", {}, b"", 200)
        headers = answer.headers
        md5 = headers.get("Content-MD5")
        return {
            "size": int(headers.get("Content-Length") or 0),
            "etag": _etag(answer),
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
            answer = self._send("GET", f"{self._dfs}?{urlencode(query)}", {}, b"", 200)
            for entry in json.loads(answer.body() or b"{}").get("paths", []):
                yield {
                    "name": entry["name"],
                    "size": int(entry.get("contentLength") or 0),
                    "is_dir": str(entry.get("isDirectory", "")).lower() == "true",
                    "etag": (entry.get("etag") or "").strip('"') or None,
                    "modified": _timestamp(entry.get("lastModified")),
                }
            continuation = answer.headers.get("x-ms-continuation")
            if not continuation:
                return

    def make_dir(self, path: str) -> None:
        """Path Create of a folder (and its missing parents); an existing one stays."""
        self._send("PUT", f"{self._dfs}/{_quote(path)}?resource=directory", {}, b"", 201)

    def delete(self, path: str, recursive: bool) -> None:
        """Path Delete of a file, an empty folder, or with ``recursive`` a whole folder (which
        the service may delete in several calls, each answer naming where to go on). A 404
        after a retry is done: the try whose answer was lost deleted it. A recursive delete
        asks for pages (``paginated=true``): without it the service checks the ACLs of a
        big folder in one call, which may time out."""
        query = {"recursive": "true" if recursive else "false"}
        if recursive:
            query["paginated"] = "true"
        while True:
            response = self._http.send(
                "DELETE", f"{self._dfs}/{_quote(path)}?{urlencode(query)}", {}, b"",
                ok=(200,), ok_if_retried=(404,))
            continuation = response.headers.get("x-ms-continuation")
            if not continuation:
                return
            query["continuation"] = continuation

    def hierarchical_namespace(self) -> Optional[bool]:
        """Whether the account has a hierarchical namespace; None when the service does not
        say. Get Account Information on the container (``x-ms-is-hns-enabled``) needs the
        RBAC action ``blobServices/getInfo/action``, which the data roles may not grant
        (403, or 404 from services older than 2025): then the file system root's ACL is
        asked for, as Hadoop's ABFS driver does (a flat account answers 400)."""
        answer = self._http.send("HEAD", f"{self._base}?restype=account&comp=properties",
                                 {}, ok=(200, 403, 404))
        value = (answer.headers.get("x-ms-is-hns-enabled") or "").lower()
        if answer.status_code == 200 and value in ("true", "false"):
            return value == "true"
        acl = self._http.send("HEAD", f"{self._dfs}/?action=getAccessControl&upn=false", {},
                              ok=(200, 400, 403, 404, 409))
        return {200: True, 400: False}.get(acl.status_code)

    def _send(self, method: str, url: str, headers: Dict[str, str], body: bytes,
              expected: int) -> Answer:
        return self._http.send(method, url, headers, body, ok=(expected,))

    def close(self) -> None:
        self._http.close()


def _quote(path: str) -> str:
    return quote(path, safe="~/")


def _base64_md5(md5: str) -> str:
    return base64.b64encode(bytes.fromhex(md5)).decode()


def _total_size(answer: Answer, default: int) -> int:
    """The file's size from ``Content-Range: bytes 0-99/1234`` (or ``bytes */1234``)."""
    total = (answer.headers.get("Content-Range") or "").rpartition("/")[2]
    return int(total) if total.isdigit() else default


def _timestamp(value: Optional[str]) -> Optional[float]:
    """Epoch seconds of an HTTP date (``Thu, 01 Jan 2026 10:00:00 GMT``), if there is one."""
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def _etag(answer: Answer) -> Optional[str]:
    value = answer.headers.get("ETag")
    return value.strip('"') if value else None
