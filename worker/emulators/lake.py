"""The Data Lake Gen2 emulator: DFS and Blob APIs on one HTTPS host, path-style URLs.

URLs are ``https://127.0.0.1:PORT/ACCOUNT/FILESYSTEM/PATH``. The DataLake SDK sends file
system create/delete/properties, path properties, metadata and downloads to the Blob API
and listing, create, append, flush, rename and delete to the DFS API; both land here and
are told apart by query string, method and headers (:func:`classify`). Blob Put Blob
(``x-ms-blob-type: BlockBlob``, the worker's small uploads) creates or replaces a file in one
request and, as on a hierarchical-namespace account, its missing parent directories. Every
request needs a bearer token for ``https://storage.azure.com`` from the emulated IMDS, and the
calling identity needs the right grant (``config.py``).

Operation names (for faults and counters): create_filesystem, delete_filesystem,
get_filesystem_properties, set_filesystem_metadata, list_filesystems, list_paths, create,
append, flush, read, get_properties, set_metadata, set_properties, set_access_control,
get_access_control, rename, delete, put_blob, get_account_info, unknown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import unquote

from . import lake_wire as wire
from .config import EmulatorConfig, Identity
from .lake_store import DEFAULT_PAGE, LakeError, LakeStore, decode_properties
from .server import Request, Response
from .tokens import TENANT_ID, TokenError, TokenIssuer, bearer_token

AUDIENCE = "https://storage.azure.com"
_FS_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
# op -> (api, needs write, scope): scope is "account", "filesystem" or "path"
OPERATIONS: Dict[str, Tuple[str, bool, str]] = {
    "list_filesystems": ("blob", False, "account"),
    "create_filesystem": ("blob", True, "filesystem"),
    "delete_filesystem": ("blob", True, "filesystem"),
    "get_filesystem_properties": ("blob", False, "filesystem"),
    "set_filesystem_metadata": ("blob", True, "filesystem"),
    "list_paths": ("dfs", False, "path"),
    "create": ("dfs", True, "path"),
    "append": ("dfs", True, "path"),
    "flush": ("dfs", True, "path"),
    "set_access_control": ("dfs", True, "path"),
    "get_access_control": ("dfs", False, "path"),
    "rename": ("dfs", True, "path"),
    "delete": ("dfs", True, "path"),
    "read": ("blob", False, "path"),
    "get_properties": ("blob", False, "path"),
    "set_metadata": ("blob", True, "path"),
    "set_properties": ("blob", True, "path"),
    "put_blob": ("blob", True, "path"),
    "get_account_info": ("blob", False, "account"),
    "unknown": ("blob", False, "account"),
}


def split_target(raw_path: str) -> Tuple[str, str, str]:
    """``/account/fs/a%2Fb`` -> ``("account", "fs", "a/b")``, all percent-decoded."""
    parts = raw_path.lstrip("/").split("/", 2) + ["", ""]
    return unquote(parts[0]), unquote(parts[1]), unquote(parts[2]).strip("/")


def _classify_filesystem(request: Request) -> str:
    method, query = request.method, request.query
    if query.get("resource") == "filesystem" and method == "GET":
        return "list_paths"
    if query.get("comp") == "metadata" and method == "PUT":
        return "set_filesystem_metadata"
    if method == "HEAD" and query.get("action") == "getAccessControl":
        return "get_access_control"  # of the root folder
    return {"PUT": "create_filesystem", "DELETE": "delete_filesystem", "GET":
            "get_filesystem_properties", "HEAD": "get_filesystem_properties"}.get(
                method, "unknown")


def _classify_path(request: Request) -> str:
    method, query = request.method, request.query
    if method == "PATCH":
        return {"append": "append", "flush": "flush", "setAccessControl": "set_access_control",
                "setProperties": "set_metadata"}.get(query.get("action", ""), "unknown")
    if method == "PUT":
        if "comp" in query:
            return {"metadata": "set_metadata", "properties": "set_properties"}.get(
                query["comp"], "unknown")
        if "mode" in query or request.header("x-ms-rename-source") is not None:
            return "rename"
        if "resource" in query:
            return "create"
        return "put_blob" if request.header("x-ms-blob-type") == "BlockBlob" else "unknown"
    if method == "HEAD" and "action" in query:
        return "get_access_control"
    return {"DELETE": "delete", "GET": "read", "HEAD": "get_properties"}.get(method, "unknown")


def classify(request: Request) -> str:
    """The operation a request asks for, from its method, query string and headers."""
    if _is_account_info(request):
        return "get_account_info"
    _, fs, path = split_target(request.raw_path)
    if not fs:
        return "list_filesystems" if request.query.get("comp") == "list" else "unknown"
    return _classify_filesystem(request) if not path else _classify_path(request)


def _is_account_info(request: Request) -> bool:
    """Get Account Information (``?restype=account&comp=properties``, on the account or a
    container): what kind of account this is, hierarchical namespace or not."""
    return (request.method in ("GET", "HEAD") and request.query.get("restype") == "account"
            and request.query.get("comp") == "properties")


class LakeApp:
    """The lake service: authorization, routing, and the wire shape of each operation."""

    service = "lake"

    def __init__(self, config: EmulatorConfig, issuer: TokenIssuer,
                 store: Optional[LakeStore] = None) -> None:
        self.config = config
        self.issuer = issuer
        self.store = store or LakeStore(delete_page_size=DEFAULT_PAGE)
        self.base_url = ""
        #: False: a flat Blob Storage account (``emulate --flat-namespace``), as Get Account
        #: Information reports it; the operations themselves stay those of a Data Lake.
        self.hierarchical_namespace = True
        self._handlers: Dict[str, Callable[[Request, str, str], Response]] = {
            name[len("_op_"):]: getattr(self, name) for name in dir(self)
            if name.startswith("_op_")}

    def operation(self, request: Request) -> str:
        return classify(request)

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        api = OPERATIONS.get(classify(request), ("blob",))[0]
        return wire.error(request, api, status, code, message)

    def handle(self, request: Request, operation: str) -> Response:
        account, fs, path = split_target(request.raw_path)
        api = OPERATIONS[operation][0]
        try:
            if account != self.config.account:
                raise LakeError(400, "InvalidUri", "The requested URI does not represent any "
                                "resource on the server.")
            identity = self._authenticate(request)
            self._authorize(identity, request, operation, fs, path)
            if operation == "unknown":
                raise LakeError(400, "UnsupportedHttpVerb" if api == "blob" else
                                "InvalidQueryParameterValue", "The request is not supported.")
            response = self._handlers[operation](request, fs, path)
        except LakeError as e:
            response = wire.error(request, api, e.status, e.code, e.message)
            response.headers += e.headers
            if e.status == 401:
                response.headers.append(("WWW-Authenticate", self._challenge()))
            return response
        response.headers[:0] = wire.version_header(request)
        return response

    # -- authorization -------------------------------------------------------------------

    @staticmethod
    def _challenge() -> str:
        return ("Bearer authorization_uri=https://login.microsoftonline.com/%s/oauth2/authorize"
                " resource_id=%s" % (TENANT_ID, AUDIENCE))

    def _authenticate(self, request: Request) -> Identity:
        try:
            claims = self.issuer.verify(bearer_token(request.header("Authorization")), AUDIENCE)
        except TokenError as e:
            if e.reason == "missing":
                raise LakeError(401, "NoAuthenticationInformation", "Server failed to "
                                "authenticate the request. Please refer to the information in "
                                "the www-authenticate header.") from e
            raise LakeError(401, "InvalidAuthenticationInfo", "Server failed to authenticate "
                            "the request. Please refer to the information in the "
                            "www-authenticate header. %s" % e) from e
        identity = self.config.identity(claims.client_id)
        if identity is None:
            raise LakeError(403, "AuthorizationPermissionMismatch", _FORBIDDEN)
        return identity

    def _authorize(self, identity: Identity, request: Request, operation: str, fs: str,
                   path: str) -> None:
        _, write, scope = OPERATIONS[operation]
        if scope == "account":
            allowed = bool(identity.lake)
        elif scope == "filesystem":
            allowed = identity.may_lake(fs, "", True) if write else \
                identity.may_touch_filesystem(fs)
        else:
            target = path or request.query.get("directory", "").strip("/")
            allowed = identity.may_lake(fs, target, write)
            if allowed and operation == "rename":
                allowed = identity.may_lake(*_rename_source(request), True)
        if not allowed:
            raise LakeError(403, "AuthorizationPermissionMismatch", _FORBIDDEN)

    # -- the account (Blob API) -----------------------------------------------------------

    def _op_get_account_info(self, request: Request, fs: str, path: str) -> Response:
        return Response(200, [
            ("x-ms-sku-name", "Standard_LRS"), ("x-ms-account-kind", "StorageV2"),
            ("x-ms-is-hns-enabled", "true" if self.hierarchical_namespace else "false")])

    def _root_access_control(self, fs: str) -> Response:
        """The root folder's ACL; a flat account has none: 400, which clients such as
        Hadoop's ABFS driver read as "no hierarchical namespace"."""
        self.store.filesystem(fs, "FilesystemNotFound")
        if not self.hierarchical_namespace:
            raise LakeError(400, "HierarchicalNamespaceNotEnabled", "This operation is only "
                            "supported on a hierarchical namespace enabled account.")
        return Response(200, [("x-ms-owner", "$superuser"), ("x-ms-group", "$superuser"),
                              ("x-ms-permissions", "rwxr-x---"),
                              ("x-ms-acl", "user::rwx,group::r-x,other::---")])

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
        self.store.append(fs, path, position, request.body)
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
        node = self.store.get(fs, path, "FilesystemNotFound", "PathNotFound")
        return Response(200, wire.stamp(node))

    def _op_get_access_control(self, request: Request, fs: str, path: str) -> Response:
        if not path:
            return self._root_access_control(fs)
        node = self.store.get(fs, path, "FilesystemNotFound", "PathNotFound")
        acl = "user::rwx,group::r-x,other::---" if node.is_dir else \
            "user::rw-,group::r--,other::---"
        return Response(200, wire.stamp(node) + [
            ("x-ms-owner", "$superuser"), ("x-ms-group", "$superuser"),
            ("x-ms-permissions", "rwxr-x---" if node.is_dir else "rw-r-----"),
            ("x-ms-acl", acl)])

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
        _check_md5(request)
        node = self.store.put(fs, path, request.body, wire.conditions(request),
                              wire.metadata_from_headers(request),
                              wire.content_from_headers(request, blob=True))
        md5 = base64.b64encode(hashlib.md5(request.body).digest()).decode()
        return Response(201, wire.stamp(node) + [
            ("Content-MD5", md5), ("x-ms-request-server-encrypted", "true")])

    @staticmethod
    def _check_read_conditions(request: Request, node: object) -> None:
        conditions = wire.conditions(request)
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


_FORBIDDEN = "This request is not authorized to perform this operation using this permission."


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
