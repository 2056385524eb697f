"""The Blob API operations the DataLake SDK does not use but Blob clients do.

List Blobs (flat or by delimiter; directories of the hierarchical namespace are blobs with
``hdi_isfolder`` metadata), Put Block / Put Block List / Get Block List, Copy Blob within the
account, Lease Blob, Delete Blob (202, an empty directory only), Blob Batch of deletes and
Get Account Information (``x-ms-is-hns-enabled: true``), with the shapes and codes of the
Blob service. :class:`BlobOperations` is a part of the lake app (``lake.py``), which routes
requests here and authorizes them first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

from . import lake_batch, lake_lease
from . import lake_blob_store as blobs
from . import lake_wire as wire
from .lake_auth import READ_SOURCE
from .lake_errors import LakeError
from .lake_store import DEFAULT_PAGE, Node
from .server import Request, Response

_INVALID_XML = "The XML specified is not syntactically valid."


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _max_results(query: Dict[str, str]) -> int:
    value = query.get("maxresults")
    if value is None:
        return DEFAULT_PAGE
    if not value.isdigit() or int(value) < 1:
        raise LakeError(400, "OutOfRangeQueryParameterValue", "One of the query parameters "
                        "specified in the request URI is outside the permissible range: "
                        "maxresults=%s." % value)
    return min(int(value), DEFAULT_PAGE)


def _marker(value: Optional[str]) -> Optional[str]:
    start = wire.decode_marker(value)
    if value and start is None:
        raise LakeError(400, "InvalidQueryParameterValue", "Value for one of the query "
                        "parameters specified in the request URI is invalid: marker.")
    return start


def _page(names: List[str], nodes: Dict[str, Node], prefix: str, delimiter: str,
          limit: int) -> Tuple[List[Tuple[str, Optional[Node]]], Optional[str]]:
    """One page of entries (a blob, or with a delimiter a prefix standing for every name
    under it) and the name the next page starts from."""
    entries: List[Tuple[str, Optional[Node]]] = []
    for name in names:
        cut = name.find(delimiter, len(prefix)) if delimiter else -1
        entry = name[:cut + len(delimiter)] if cut >= 0 else name
        if entries and entries[-1][0] == entry and cut >= 0:
            continue  # another name under the same prefix
        if len(entries) == limit:
            return entries, entry
        entries.append((entry, None if cut >= 0 else nodes[name]))
    return entries, None


def _block_list_entries(body: bytes) -> List[Tuple[str, str]]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise LakeError(400, "InvalidXmlDocument", _INVALID_XML) from e
    if root.tag != "BlockList":
        raise LakeError(400, "InvalidXmlDocument", _INVALID_XML)
    entries = []
    for child in root:
        if child.tag not in ("Committed", "Uncommitted", "Latest"):
            raise LakeError(400, "InvalidXmlNodeValue", "The value for one of the XML nodes "
                            "is not in the correct format.")
        entries.append((child.tag, (child.text or "").strip()))
    return entries


def _block_id(value: Optional[str]) -> str:
    try:
        decoded = base64.b64decode(value or "", validate=True)
    except (ValueError, binascii.Error):
        decoded = b""
    if not decoded or len(decoded) > 64:
        raise LakeError(400, "InvalidQueryParameterValue", "Value for one of the query "
                        "parameters specified in the request URI is invalid: blockid.")
    return value  # type: ignore[return-value]


class BlobOperations:
    """The Blob-only operations; ``self`` is the lake app (store, config, auth, handle)."""

    store: Any
    config: Any
    auth: Any
    base_url: str

    def handle(self, request: Request, operation: str) -> Response:  # the lake app's
        raise NotImplementedError

    # -- account and listing -----------------------------------------------------------

    def _op_get_account_info(self, request: Request, fs: str, path: str) -> Response:
        return Response(200, [("x-ms-sku-name", "Standard_LRS"),
                              ("x-ms-account-kind", "StorageV2"),
                              ("x-ms-is-hns-enabled", "true")])

    def _op_list_blobs(self, request: Request, fs: str, path: str) -> Response:
        query = request.query
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        limit, start = _max_results(query), _marker(query.get("marker"))
        with self.store.lock:
            container = self.store.filesystem(fs)
            names = blobs.blob_names(container, prefix, start)
            entries, following = _page(names, container.paths, prefix, delimiter, limit)
        body = wire.list_blobs_xml(self.base_url + "/" + self.config.account, fs, query,
                                   entries, following and wire.encode_marker(following))
        return Response(200, [("Content-Type", "application/xml")], body)

    # -- blocks ----------------------------------------------------------------------------

    def _op_put_block(self, request: Request, fs: str, path: str) -> Response:
        block_id = _block_id(request.query.get("blockid"))
        md5 = _md5(request.body)
        if request.header("Content-MD5") not in (None, "", md5):
            raise LakeError(400, "Md5Mismatch", "The MD5 value specified in the request did "
                            "not match with the MD5 value calculated by the server.")
        blobs.stage_block(self.store, fs, path, block_id, request.body,
                          request.header("x-ms-lease-id"))
        return Response(201, [("Content-MD5", md5), ("x-ms-request-server-encrypted", "true")])

    def _op_put_block_list(self, request: Request, fs: str, path: str) -> Response:
        node = blobs.commit_blocks(
            self.store, fs, path, _block_list_entries(request.body), wire.conditions(request),
            wire.metadata_from_headers(request), wire.content_from_headers(request, blob=True))
        return Response(201, wire.stamp(node) + [("x-ms-request-server-encrypted", "true")])

    def _op_get_block_list(self, request: Request, fs: str, path: str) -> Response:
        which = request.query.get("blocklisttype", "committed").lower()
        if which not in ("committed", "uncommitted", "all"):
            raise LakeError(400, "InvalidQueryParameterValue", "Value for one of the query "
                            "parameters specified in the request URI is invalid: "
                            "blocklisttype.")
        node, committed, uncommitted = blobs.block_list(
            self.store, fs, path, request.header("x-ms-lease-id"))
        headers = [("Content-Type", "application/xml")]
        if node is not None:
            headers = wire.stamp(node) + headers + [
                ("x-ms-blob-content-length", str(len(node.data)))]
        return Response(200, headers, wire.block_list_xml(committed, uncommitted, which))

    # -- copy, lease, delete ---------------------------------------------------------------

    def _copy_source(self, request: Request, fs: str, path: str) -> Tuple[str, str, str]:
        """The same-account source of a Copy Blob to ``fs``/``path`` and its URL. The source
        is authorized by its own SAS when its URL has one, else as the caller."""
        url = request.header("x-ms-copy-source") or ""
        parts = urlsplit(url)
        account, _, rest = parts.path.lstrip("/").partition("/")
        source_fs, _, source_path = rest.partition("/")
        if unquote(account) != self.config.account or not source_fs or not source_path:
            raise LakeError(400, "CannotVerifyCopySource", "Copy Blob serves sources in this "
                            "account only (https://HOST/%s/FILESYSTEM/PATH); the source given "
                            "is %s." % (self.config.account, parts.path or "empty"))
        source_fs, source_path = unquote(source_fs), unquote(source_path).strip("/")
        if parts.query:
            source = Request("GET", parts.path + "?" + parts.query, request.headers, b"")
            caller = self.auth.caller(source, source_fs, source_path)
        else:
            caller = self.auth.caller(request, fs, path)
        caller.check(READ_SOURCE, source_fs, source_path)
        return source_fs, source_path, url

    def _op_copy_blob(self, request: Request, fs: str, path: str) -> Response:
        source_fs, source_path, url = self._copy_source(request, fs, path)
        metadata = wire.metadata_from_headers(request) or None
        node = blobs.copy_blob(self.store, (source_fs, source_path), (fs, path), url,
                               wire.conditions(request), metadata)
        copied = [(k, v) for k, v in node.copy.items() if k in ("x-ms-copy-id",
                                                                 "x-ms-copy-status")]
        return Response(202, wire.stamp(node) + copied)

    def _op_lease_blob(self, request: Request, fs: str, path: str) -> Response:
        action = (request.header("x-ms-lease-action") or "").lower()
        with self.store.lock:
            node = self.store.get(fs, path)
            lease_id = request.header("x-ms-lease-id")
            proposed = request.header("x-ms-proposed-lease-id")
            status, extra = 200, []
            if action == "acquire":
                node.lease = lake_lease.acquire(node.lease, proposed,
                                                request.header("x-ms-lease-duration"))
                status = 201
            elif action == "renew":
                node.lease = lake_lease.renew(node.lease, lease_id)
            elif action == "change":
                node.lease = lake_lease.change(node.lease, lease_id, proposed)
            elif action == "release":
                lake_lease.release(node.lease, lease_id)
                node.lease = None
            elif action == "break":
                node.lease, seconds = lake_lease.break_(node.lease,
                                                        request.header("x-ms-lease-break-period"))
                extra, status = [("x-ms-lease-time", str(seconds))], 202
            else:
                raise LakeError(400, "InvalidHeaderValue", "The value for one of the HTTP "
                                "headers is not in the correct format: x-ms-lease-action.")
        if action not in ("release", "break"):
            extra = [("x-ms-lease-id", node.lease.lease_id)]
        return Response(status, wire.stamp(node) + extra)

    def _op_delete_blob(self, request: Request, fs: str, path: str) -> Response:
        blobs.delete_blob(self.store, fs, path, wire.conditions(request))
        return Response(202, [("x-ms-delete-type-permanent", "true")])

    # -- batch -------------------------------------------------------------------------------

    def _op_blob_batch(self, request: Request, fs: str, path: str) -> Response:
        parts = lake_batch.parse(request.header("Content-Type"), request.body)
        if len(parts) > 256:
            raise LakeError(400, "ExceedsMaxBatchRequestCount", "The batch operation exceeds "
                            "the maximum number of allowed subrequests (256).")
        return lake_batch.answer(parts, [self._sub_request(p.request) for p in parts])

    def _sub_request(self, sub: Request) -> Response:
        """One part of a batch, served as a request of its own (deletes only)."""
        prefix = "/" + self.config.account + "/"
        if not sub.raw_path.startswith(prefix):  # clients write /FS/BLOB or /ACCOUNT/FS/BLOB
            sub.raw_path = prefix.rstrip("/") + sub.raw_path
        return self.handle(sub, "delete_blob" if sub.method == "DELETE" else "unknown")
