"""The Data Lake Gen2 emulator: DFS and Blob APIs on one HTTPS host, path-style URLs.

URLs are ``https://127.0.0.1:PORT/ACCOUNT/FILESYSTEM/PATH``. The DataLake SDK sends file
system create/delete/properties, path properties, metadata and downloads to the Blob API
and listing, create, append, flush, rename and delete to the DFS API; Blob clients (the Blob
SDK, adlfs, obstore) use the Blob API only. All land here and are told apart by query
string, method and headers (:func:`classify`). As on a hierarchical-namespace account, a
file's missing parents are made and the Blob API sees directories as empty blobs with
``hdi_isfolder`` metadata. The Blob-only operations are in ``lake_blob.py``; who may call
is ``lake_auth.py`` (bearer tokens from the emulated identity endpoint with the
configuration's grants, Shared Key, SAS).

Operation names (for faults and counters) are the keys of :data:`OPERATIONS`; a request that
is none of them is ``unknown`` and gets Azure's error for what is not supported.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import unquote

from . import lake_lease
from . import lake_wire as wire
from .config import EmulatorConfig
from .lake_auth import Authenticator, Caller, Operation, challenge
from .lake_blob import BlobOperations
from .lake_store import DEFAULT_PAGE, LakeError, LakeStore, Node, decode_properties
from .server import Request, Response
from .tokens import TokenIssuer

_FS_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _op(api: str, write: bool, scope: str, permissions: str, resource_type: str) -> Operation:
    return Operation(api, write, scope, permissions, resource_type)


# What each operation needs: its API (error shape), whether it writes, where a token's grant
# must reach, and for a SAS the permission letters (any one) and account SAS resource type.
OPERATIONS: Dict[str, Operation] = {
    "list_filesystems": _op("blob", False, "account", "l", "s"),
    "get_account_info": _op("blob", False, "account", "", ""),
    "create_filesystem": _op("blob", True, "filesystem", "cw", "c"),
    "delete_filesystem": _op("blob", True, "filesystem", "d", "c"),
    "get_filesystem_properties": _op("blob", False, "filesystem", "r", "c"),
    "set_filesystem_metadata": _op("blob", True, "filesystem", "w", "c"),
    "list_blobs": _op("blob", False, "path", "l", "c"),
    "blob_batch": _op("blob", False, "account", "", ""),
    "list_paths": _op("dfs", False, "path", "l", "c"),
    "create": _op("dfs", True, "path", "cw", "o"),
    "append": _op("dfs", True, "path", "aw", "o"),
    "flush": _op("dfs", True, "path", "w", "o"),
    "set_access_control": _op("dfs", True, "path", "op", "o"),
    "get_access_control": _op("dfs", False, "path", "re", "o"),
    "rename": _op("dfs", True, "path", "m", "o"),
    "delete": _op("dfs", True, "path", "d", "o"),
    "read": _op("blob", False, "path", "r", "o"),
    "get_properties": _op("blob", False, "path", "r", "o"),
    "set_metadata": _op("blob", True, "path", "w", "o"),
    "set_properties": _op("blob", True, "path", "w", "o"),
    "put_blob": _op("blob", True, "path", "cw", "o"),
    "put_block": _op("blob", True, "path", "cw", "o"),
    "put_block_list": _op("blob", True, "path", "cw", "o"),
    "get_block_list": _op("blob", False, "path", "r", "o"),
    "copy_blob": _op("blob", True, "path", "cw", "o"),
    "lease_blob": _op("blob", True, "path", "w", "o"),
    "delete_blob": _op("blob", True, "path", "d", "o"),
    "unknown": _op("blob", False, "account", "", ""),
}
_DFS_PARAMETERS = ("resource", "action", "mode", "position", "recursive", "continuation")


def split_target(raw_path: str) -> Tuple[str, str, str]:
    """``/account/fs/a%2Fb`` -> ``("account", "fs", "a/b")``, all percent-decoded."""
    parts = raw_path.lstrip("/").split("/", 2) + ["", ""]
    return unquote(parts[0]), unquote(parts[1]), unquote(parts[2]).strip("/")


def _classify_account(request: Request) -> str:
    comp, method = request.query.get("comp"), request.method
    if comp == "list" and method == "GET":
        return "list_filesystems"
    return "blob_batch" if comp == "batch" and method == "POST" else "unknown"


def _classify_filesystem(request: Request) -> str:
    method, query = request.method, request.query
    if query.get("resource") == "filesystem":
        return {"GET": "list_paths", "PUT": "create_filesystem", "DELETE": "delete_filesystem",
                "HEAD": "get_filesystem_properties"}.get(method, "unknown")
    if "action" in query:  # the file system's root directory (DFS)
        return {"HEAD": "get_access_control", "PATCH": "set_access_control"}.get(
            method, "unknown")
    comp = query.get("comp")
    if comp is not None:
        return {("list", "GET"): "list_blobs", ("metadata", "PUT"): "set_filesystem_metadata",
                ("batch", "POST"): "blob_batch"}.get((comp, method), "unknown")
    return {"PUT": "create_filesystem", "DELETE": "delete_filesystem", "GET":
            "get_filesystem_properties", "HEAD": "get_filesystem_properties"}.get(
                method, "unknown")


def _classify_put(request: Request) -> str:
    query = request.query
    if "comp" in query:
        return {"metadata": "set_metadata", "properties": "set_properties",
                "block": "put_block", "blocklist": "put_block_list",
                "lease": "lease_blob"}.get(query["comp"], "unknown")
    if "mode" in query or request.header("x-ms-rename-source") is not None:
        return "rename"
    if "resource" in query:
        return "create"
    if request.header("x-ms-copy-source") is not None:
        return "copy_blob"
    return "put_blob" if request.header("x-ms-blob-type") is not None else "unknown"


def _is_blob_delete(request: Request) -> bool:
    """Delete Blob (202) or Path Delete (200)? The same URL on one host: the Blob API's
    parameters and headers, or its clients' ``Accept: application/xml``, tell them apart."""
    query = request.query
    if any(k in query for k in ("recursive", "paginated", "continuation")):
        return False
    if any(k in query for k in ("snapshot", "versionid", "deletetype")) or \
            request.header("x-ms-delete-snapshots") is not None:
        return True
    return "xml" in (request.header("Accept") or "")


def _classify_path(request: Request) -> str:
    method, query = request.method, request.query
    if method == "PATCH":
        return {"append": "append", "flush": "flush", "setAccessControl": "set_access_control",
                "setProperties": "set_metadata"}.get(query.get("action", ""), "unknown")
    if method == "PUT":
        return _classify_put(request)
    if method == "DELETE":
        return "delete_blob" if _is_blob_delete(request) else "delete"
    if method == "GET" and "comp" in query:
        return "get_block_list" if query["comp"] == "blocklist" else "unknown"
    if method == "HEAD" and "action" in query:
        return "get_access_control"
    if "comp" in query:
        return "unknown"
    return {"GET": "read", "HEAD": "get_properties"}.get(method, "unknown")


def classify(request: Request) -> str:
    """The operation a request asks for, from its method, query string and headers."""
    query = request.query
    if query.get("restype") == "account" and query.get("comp") == "properties" and \
            request.method in ("GET", "HEAD"):
        return "get_account_info"
    _, fs, path = split_target(request.raw_path)
    if not fs:
        return _classify_account(request)
    return _classify_filesystem(request) if not path else _classify_path(request)


def unsupported(request: Request) -> LakeError:
    """Azure's answer to what is not served: an unknown parameter, else the verb."""
    unknown = [k for k in ("comp", "action", "resource", "restype") if k in request.query]
    if unknown:
        return LakeError(400, "UnsupportedQueryParameter", "One of the query parameters "
                         "specified in the request URI is not supported: %s=%s."
                         % (unknown[0], request.query[unknown[0]]))
    return LakeError(405, "UnsupportedHttpVerb", "The resource doesn't support the specified "
                     "HTTP verb %s." % request.method)


def api_of(request: Request, operation: str) -> str:
    """``dfs`` or ``blob``: which API answers, so which error shape."""
    if operation == "unknown":
        return "dfs" if any(k in request.query for k in _DFS_PARAMETERS) else "blob"
    return OPERATIONS[operation].api


class LakeApp(BlobOperations):
    """The lake service: authentication, routing, and the wire shape of each operation."""

    service = "lake"

    def __init__(self, config: EmulatorConfig, issuer: TokenIssuer,
                 store: Optional[LakeStore] = None) -> None:
        self.config = config
        self.issuer = issuer
        self.auth = Authenticator(config, issuer)
        self.store = store or LakeStore(delete_page_size=DEFAULT_PAGE)
        self.base_url = ""
        self._handlers: Dict[str, Callable[[Request, str, str], Response]] = {
            name[len("_op_"):]: getattr(self, name) for name in dir(self)
            if name.startswith("_op_")}

    def operation(self, request: Request) -> str:
        return classify(request)

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        return wire.error(request, api_of(request, classify(request)), status, code, message)

    def handle(self, request: Request, operation: str) -> Response:
        account, fs, path = split_target(request.raw_path)
        try:
            if account != self.config.account:
                raise LakeError(400, "InvalidUri", "The requested URI does not represent any "
                                "resource on the server.")
            caller = self.auth.caller(request, fs, path)
            if operation == "unknown":  # authenticated, it is told what is not served
                raise unsupported(request)
            self._authorize(caller, request, operation, fs, path)
            response = self._handlers[operation](request, fs, path)
        except LakeError as e:
            response = wire.error(request, api_of(request, operation), e.status, e.code,
                                  e.message)
            response.headers += e.headers
            if e.status == 401:
                response.headers.append(("WWW-Authenticate", challenge()))
            return response
        response.headers[:0] = wire.version_header(request)
        return response

    # -- authorization -------------------------------------------------------------------

    @staticmethod
    def _authorize(caller: Caller, request: Request, operation: str, fs: str,
                   path: str) -> None:
        op = OPERATIONS[operation]
        target = path
        if operation == "list_paths":
            target = request.query.get("directory", "").strip("/")
        elif operation == "list_blobs":
            target = request.query.get("prefix", "").strip("/")
        caller.check(op, fs, target)
        if operation == "rename":
            caller.check(op, *_rename_source(request))

    # -- file systems (Blob API) ----------------------------------------------------------

    def _op_create_filesystem(self, request: Request, fs: str, path: str) -> Response:
        if not _FS_NAME.match(fs):
            raise LakeError(400, "InvalidResourceName",
                            "The specifed resource name contains invalid characters.")
        created = self.store.create_filesystem(fs, wire.metadata_from_headers(request))
        return Response(201, wire.stamp(created))

    def _op_delete_filesystem(self, request: Request, fs: str, path: str) -> Response:
        self.store.delete_filesystem(fs)
        return Response(202)

    def _op_get_filesystem_properties(self, request: Request, fs: str, path: str) -> Response:
        return Response(200, wire.filesystem_headers(self.store.filesystem(fs)))

    def _op_set_filesystem_metadata(self, request: Request, fs: str, path: str) -> Response:
        updated = self.store.set_filesystem_metadata(fs, wire.metadata_from_headers(request))
        return Response(200, wire.stamp(updated))

    def _op_list_filesystems(self, request: Request, fs: str, path: str) -> Response:
        prefix = request.query.get("prefix", "")
        found = self.store.list_filesystems(prefix)
        marker = request.query.get("marker")
        if marker:
            found = [f for f in found if f.name >= marker]
        limit = int(request.query.get("maxresults") or DEFAULT_PAGE)
        next_marker = found[limit].name if len(found) > limit else None
        body = wire.list_filesystems_xml(
            self.base_url + "/" + self.config.account, found[:limit], prefix, next_marker,
            "metadata" in request.query.get("include", ""))
        return Response(200, [("Content-Type", "application/xml")], body)

    # -- listing and paths (DFS API) -------------------------------------------------------

    def _op_list_paths(self, request: Request, fs: str, path: str) -> Response:
        query = request.query
        limit = int(query.get("maxResults") or query.get("maxresults") or DEFAULT_PAGE)
        page, marker = self.store.list_paths(
            fs, query.get("directory", "").strip("/"), query.get("recursive") == "true",
            max(1, min(limit, DEFAULT_PAGE)), wire.decode_marker(query.get("continuation")))
        body = json.dumps({"paths": [wire.path_entry(n, node) for n, node in page]}).encode()
        headers = [("Content-Type", "application/json;charset=utf-8")]
        if marker is not None:
            headers.append(("x-ms-continuation", wire.encode_marker(marker)))
        return Response(200, headers, body)

    def _op_create(self, request: Request, fs: str, path: str) -> Response:
        resource = request.query.get("resource")
        if resource not in ("file", "directory"):
            raise LakeError(400, "InvalidQueryParameterValue",
                            "Value for one of the query parameters specified in the request "
                            "URI is invalid.")
        node = self.store.create(
            fs, path, resource == "directory", wire.conditions(request),
            decode_properties(request.header("x-ms-properties")),
            wire.content_from_headers(request))
        return Response(201, wire.stamp(node) + [("x-ms-request-server-encrypted", "true")])

    def _op_append(self, request: Request, fs: str, path: str) -> Response:
        position = _position(request)
        _check_md5(request)
        self.store.append(fs, path, position, request.body, request.header("x-ms-lease-id"))
        headers = [("x-ms-request-server-encrypted", "true")]
        if request.query.get("flush") == "true":
            node = self.store.flush(fs, path, position + len(request.body),
                                    wire.conditions(request), {})
            headers += wire.stamp(node)
        return Response(202, headers)

    def _op_flush(self, request: Request, fs: str, path: str) -> Response:
        if request.body:
            raise LakeError(400, "ContentLengthMustBeZero", "The Content-Length request header "
                            "must be zero for this request.")
        node = self.store.flush(
            fs, path, _position(request), wire.conditions(request),
            wire.content_from_headers(request),
            retain=request.query.get("retainUncommittedData") == "true")
        return Response(200, wire.stamp(node) + [("x-ms-request-server-encrypted", "true")])

    def _op_set_access_control(self, request: Request, fs: str, path: str) -> Response:
        if not path:
            return Response(200, wire.stamp(self.store.filesystem(fs, "FilesystemNotFound")))
        node = self.store.get(fs, path, "FilesystemNotFound", "PathNotFound")
        return Response(200, wire.stamp(node))

    def _op_get_access_control(self, request: Request, fs: str, path: str) -> Response:
        """Owner, group, permissions and ACL of a path, or of the file system's root
        directory (how clients detect a hierarchical namespace)."""
        if not path:
            stamped = self.store.filesystem(fs, "FilesystemNotFound")
            is_dir = True
        else:
            stamped = self.store.get(fs, path, "FilesystemNotFound", "PathNotFound")
            is_dir = stamped.is_dir
        return Response(200, wire.stamp(stamped) + wire.access_control(is_dir) + [
            ("x-ms-resource-type", "directory" if is_dir else "file")])

    def _op_rename(self, request: Request, fs: str, path: str) -> Response:
        node = self.store.rename(_rename_source(request), (fs, path),
                                 wire.conditions(request, "x-ms-source-"),
                                 wire.conditions(request))
        return Response(201, wire.stamp(node))

    def _op_delete(self, request: Request, fs: str, path: str) -> Response:
        recursive = request.query.get("recursive")
        more = self.store.delete(fs, path, None if recursive is None else recursive == "true",
                                 wire.conditions(request),
                                 paginated=request.query.get("paginated") == "true")
        headers = [("x-ms-continuation", "delete-more")] if more else []
        return Response(200, headers)

    # -- paths (Blob API) ------------------------------------------------------------------

    def _op_get_properties(self, request: Request, fs: str, path: str) -> Response:
        node = self.store.get(fs, path)
        self._check_read_conditions(request, node)
        return Response(200, wire.node_headers(node), length=len(node.data))

    def _op_read(self, request: Request, fs: str, path: str) -> Response:
        node = self.store.get(fs, path)
        self._check_read_conditions(request, node)
        data = node.data  # immutable bytes: later flushes replace it, never change it
        span = _parse_range(request.header("x-ms-range") or request.header("Range"), len(data))
        if span is None:
            return Response(200, wire.node_headers(node), memoryview(data))
        start, end = span
        headers = wire.node_headers(node) + [
            ("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))]
        return Response(206, headers, memoryview(data)[start:end + 1])

    def _op_put_blob(self, request: Request, fs: str, path: str) -> Response:
        if request.header("x-ms-blob-type") != "BlockBlob":
            raise LakeError(400, "UnsupportedHeader", "One of the HTTP headers specified in "
                            "the request is not supported: x-ms-blob-type %s (block blobs "
                            "only)." % request.header("x-ms-blob-type"))
        _check_md5(request)
        node = self.store.put(fs, path, request.body, wire.conditions(request),
                              wire.metadata_from_headers(request),
                              wire.content_from_headers(request, blob=True))
        md5 = base64.b64encode(hashlib.md5(request.body).digest()).decode()
        return Response(201, wire.stamp(node) + [
            ("Content-MD5", md5), ("x-ms-request-server-encrypted", "true")])

    @staticmethod
    def _check_read_conditions(request: Request, node: Node) -> None:
        conditions = wire.conditions(request)
        lake_lease.check(node.lease, conditions.lease_id, write=False)
        if not conditions._replace(if_none_match=None, if_modified_since=None).holds(node):
            raise LakeError(412, "ConditionNotMet", "The condition specified using HTTP "
                            "conditional header(s) is not met.")
        if not conditions._replace(if_match=None, if_unmodified_since=None).holds(node):
            raise LakeError(304, "ConditionNotMet", "The condition specified using HTTP "
                            "conditional header(s) is not met.")

    def _op_set_metadata(self, request: Request, fs: str, path: str) -> Response:
        if request.method == "PATCH":  # DFS setProperties: x-ms-properties
            metadata = decode_properties(request.header("x-ms-properties"))
        else:
            metadata = wire.metadata_from_headers(request)
        node = self.store.set_metadata(fs, path, metadata, wire.conditions(request))
        return Response(200, wire.stamp(node) + [("x-ms-request-server-encrypted", "true")])

    def _op_set_properties(self, request: Request, fs: str, path: str) -> Response:
        node = self.store.set_content(fs, path, wire.content_from_headers(request, blob=True),
                                      wire.conditions(request))
        return Response(200, wire.stamp(node))


def _position(request: Request) -> int:
    value = request.query.get("position")
    if value is None or not value.isdigit():
        raise LakeError(400, "MissingRequiredQueryParameter", "A query parameter that's "
                        "mandatory for this request is not specified: position.")
    return int(value)


def _check_md5(request: Request) -> None:
    expected = request.header("Content-MD5")
    if expected and base64.b64encode(hashlib.md5(request.body).digest()).decode() != expected:
        raise LakeError(400, "Md5Mismatch", "The MD5 value specified in the request did not "
                        "match with the MD5 value calculated by the server.")


def _rename_source(request: Request) -> Tuple[str, str]:
    """``x-ms-rename-source: /fs/a%20b[?sas]`` -> ``("fs", "a b")`` (no account segment)."""
    source = (request.header("x-ms-rename-source") or "").partition("?")[0]
    fs, _, path = source.lstrip("/").partition("/")
    if not fs or not path:
        raise LakeError(400, "InvalidSourceUri", "The source URI is invalid.")
    return unquote(fs), unquote(path).strip("/")


def _parse_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """``bytes=a-b`` -> ``(a, min(b, size-1))``; 416 InvalidRange when it starts past the end."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        raise LakeError(416, "InvalidRange", "The range specified is invalid for the current "
                        "size of the resource.", [("Content-Range", "bytes */%d" % size)])
    return start, min(end, size - 1)
