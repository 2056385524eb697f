"""How the lake writes and reads the wire: error shapes, property headers, listings.

Two APIs share one host. DFS errors are JSON, Blob errors XML, and a HEAD error carries its
code only in ``x-ms-error-code`` (a HEAD has no body). Property headers are the ones the
real service sends, including ``x-ms-meta-hdi_isfolder: true`` on directories.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import json
import uuid
from typing import Dict, List, Optional, Tuple
from xml.sax.saxutils import escape

from . import lake_lease
from .lake_store import (
    DIRECTORY_PERMISSIONS,
    FILE_PERMISSIONS,
    Conditions,
    FileSystem,
    Node,
)
from .server import Request, Response, http_date

Headers = List[Tuple[str, str]]
_FILETIME_EPOCH = 11644473600  # seconds from 1601-01-01 to 1970-01-01
_CONTENT_REQUEST_HEADERS = {
    "x-ms-content-type": "Content-Type", "x-ms-content-encoding": "Content-Encoding",
    "x-ms-content-language": "Content-Language",
    "x-ms-content-disposition": "Content-Disposition",
    "x-ms-cache-control": "Cache-Control", "x-ms-content-md5": "Content-MD5",
}
_BLOB_CONTENT_HEADERS = {
    "x-ms-blob-content-type": "Content-Type", "x-ms-blob-content-encoding": "Content-Encoding",
    "x-ms-blob-content-language": "Content-Language",
    "x-ms-blob-content-disposition": "Content-Disposition",
    "x-ms-blob-cache-control": "Cache-Control", "x-ms-blob-content-md5": "Content-MD5",
}


def _message(text: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    return "%s\nRequestId:%s\nTime:%s" % (text, uuid.uuid4(), now)


def version_header(request: Request) -> Headers:
    """Echo the client's x-ms-version: each SDK release sends its own."""
    return [("x-ms-version", request.header("x-ms-version") or "2021-08-06")]


def error(request: Request, api: str, status: int, code: str, message: str) -> Response:
    """The service's error response for ``api`` (``dfs`` or ``blob``)."""
    headers = version_header(request) + [("x-ms-error-code", code)]
    if request.method == "HEAD" or status == 304:
        return Response(status, headers)
    if api == "dfs":
        body = json.dumps({"error": {"code": code, "message": _message(message)}}).encode()
        headers.append(("Content-Type", "application/json;charset=utf-8"))
    else:
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s'
                "</Message></Error>" % (escape(code), escape(_message(message)))).encode()
        headers.append(("Content-Type", "application/xml"))
    return Response(status, headers, body)


def parse_date(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    parsed = email.utils.parsedate_to_datetime(value)
    return parsed.timestamp()


def conditions(request: Request, prefix: str = "") -> Conditions:
    """The conditional headers and lease id, plain or the ``x-ms-source-`` ones of a rename's
    or a copy's source."""
    return Conditions(
        request.header(prefix + "If-Match") or None,
        request.header(prefix + "If-None-Match") or None,
        parse_date(request.header(prefix + "If-Modified-Since")),
        parse_date(request.header(prefix + "If-Unmodified-Since")),
        request.header((prefix or "x-ms-") + "lease-id") or None,
    )


def metadata_from_headers(request: Request) -> Dict[str, str]:
    """``x-ms-meta-<key>: value`` headers, keys as sent."""
    return {k[len("x-ms-meta-"):]: v for k, v in request.headers.items()
            if k.lower().startswith("x-ms-meta-")}


def content_from_headers(request: Request, blob: bool = False) -> Dict[str, str]:
    names = _BLOB_CONTENT_HEADERS if blob else _CONTENT_REQUEST_HEADERS
    return {names[k.lower()]: v for k, v in request.headers.items() if k.lower() in names and v}


def stamp(node_or_fs: object) -> Headers:
    """ETag and Last-Modified of a path or file system."""
    return [("ETag", node_or_fs.etag),  # type: ignore[attr-defined]
            ("Last-Modified", http_date(node_or_fs.last_modified))]  # type: ignore[attr-defined]


def node_headers(node: Node) -> Headers:
    """What a Blob GET/HEAD answers about a path, as the real service does."""
    headers = stamp(node) + [
        ("Content-Type", node.content.get("Content-Type", "application/octet-stream")),
        ("Accept-Ranges", "bytes"),
        ("x-ms-creation-time", http_date(node.created)),
        ("x-ms-blob-type", "BlockBlob"),
    ] + lake_lease.status_headers(node.lease) + [
        ("x-ms-server-encrypted", "true"),
        ("x-ms-resource-type", "directory" if node.is_dir else "file"),
        ("x-ms-owner", "$superuser"), ("x-ms-group", "$superuser"),
        ("x-ms-permissions", DIRECTORY_PERMISSIONS if node.is_dir else FILE_PERMISSIONS),
    ]
    headers += [(k, v) for k, v in node.content.items() if k != "Content-Type"]
    headers += list(node.copy.items())
    headers += [("x-ms-meta-" + k, v) for k, v in node.metadata.items()
                if k.lower() != "hdi_isfolder"]
    if node.is_dir:
        headers.append(("x-ms-meta-hdi_isfolder", "true"))
    return headers


def filesystem_headers(fs: FileSystem) -> Headers:
    return stamp(fs) + [
        ("x-ms-lease-status", "unlocked"), ("x-ms-lease-state", "available"),
        ("x-ms-has-immutability-policy", "false"), ("x-ms-has-legal-hold", "false"),
        ("x-ms-default-encryption-scope", "$account-encryption-key"),
        ("x-ms-deny-encryption-scope-override", "false"),
    ] + [("x-ms-meta-" + k, v) for k, v in fs.metadata.items()]


def _filetime(timestamp: float) -> str:
    return str(int((timestamp + _FILETIME_EPOCH) * 10 ** 7))


def path_entry(name: str, node: Node) -> Dict[str, str]:
    """One ``paths`` entry of a DFS listing: lowercase ``etag``, RFC 1123 ``lastModified``."""
    entry = {
        "contentLength": str(len(node.data)), "creationTime": _filetime(node.created),
        "etag": node.etag.strip('"'), "expiryTime": "0", "group": "$superuser",
        "lastModified": http_date(node.last_modified), "name": name, "owner": "$superuser",
        "permissions": DIRECTORY_PERMISSIONS if node.is_dir else FILE_PERMISSIONS,
    }
    if node.is_dir:
        entry["isDirectory"] = "true"
    return entry


def encode_marker(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode("utf-8")).decode("ascii")


def decode_marker(token: Optional[str]) -> Optional[str]:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except ValueError:
        return None


def list_filesystems_xml(base_url: str, filesystems: List[FileSystem], prefix: str,
                         next_marker: Optional[str], include_metadata: bool) -> bytes:
    """The Blob ``List Containers`` body the SDK's XML models read."""
    items = []
    for fs in filesystems:
        meta = "".join("<%s>%s</%s>" % (k, escape(v), k) for k, v in fs.metadata.items())
        items.append(
            "<Container><Name>%s</Name><Properties><Last-Modified>%s</Last-Modified>"
            "<Etag>%s</Etag><LeaseStatus>unlocked</LeaseStatus><LeaseState>available"
            "</LeaseState><HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>"
            "false</HasLegalHold></Properties>%s</Container>"
            % (escape(fs.name), http_date(fs.last_modified), escape(fs.etag),
               "<Metadata>%s</Metadata>" % meta if include_metadata else ""))
    return ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="%s/">'
            "<Prefix>%s</Prefix><Containers>%s</Containers><NextMarker>%s</NextMarker>"
            "</EnumerationResults>" % (escape(base_url), escape(prefix), "".join(items),
                                       escape(next_marker or ""))).encode("utf-8")


def access_control(is_dir: bool) -> Headers:
    """Owner, group, permissions and ACL, as Get Access Control answers."""
    return [("x-ms-owner", "$superuser"), ("x-ms-group", "$superuser"),
            ("x-ms-permissions", DIRECTORY_PERMISSIONS if is_dir else FILE_PERMISSIONS),
            ("x-ms-acl", "user::rwx,group::r-x,other::---" if is_dir else
             "user::rw-,group::r--,other::---")]


def _element(name: str, value: str) -> str:
    return "<%s>%s</%s>" % (name, escape(value), name) if value else "<%s />" % name


def _blob_properties(node: Node, include: str) -> str:
    content = node.content
    lease = dict(lake_lease.status_headers(node.lease))
    fields = [
        ("Creation-Time", http_date(node.created)),
        ("Last-Modified", http_date(node.last_modified)),
        ("Etag", node.etag.strip('"')),
        ("ResourceType", "directory" if node.is_dir else "file"),
        ("Content-Length", str(len(node.data))),
        ("Content-Type", content.get("Content-Type", "application/octet-stream")),
        ("Content-Encoding", content.get("Content-Encoding", "")),
        ("Content-Language", content.get("Content-Language", "")),
        ("Content-MD5", content.get("Content-MD5", "")),
        ("Content-Disposition", content.get("Content-Disposition", "")),
        ("Cache-Control", content.get("Cache-Control", "")),
        ("BlobType", "BlockBlob"), ("AccessTier", "Hot"), ("AccessTierInferred", "true"),
        ("LeaseStatus", lease["x-ms-lease-status"]), ("LeaseState", lease["x-ms-lease-state"]),
    ]
    if "x-ms-lease-duration" in lease:
        fields.append(("LeaseDuration", lease["x-ms-lease-duration"]))
    fields.append(("ServerEncrypted", "true"))
    if "permissions" in include:
        fields += [(k[len("x-ms-"):].capitalize(), v) for k, v in access_control(node.is_dir)]
    return "".join(_element(k, v) for k, v in fields)


def _blob_entry(name: str, node: Node, include: str) -> str:
    entry = "<Blob><Name>%s</Name><Properties>%s</Properties>" % (
        escape(name), _blob_properties(node, include))
    if "metadata" in include:
        metadata = dict(node.metadata)
        if node.is_dir:
            metadata["hdi_isfolder"] = "true"
        entry += "<Metadata>%s</Metadata>" % "".join(
            "<%s>%s</%s>" % (k, escape(v), k) for k, v in metadata.items())
    return entry + "</Blob>"


def list_blobs_xml(base_url: str, container: str, query: Dict[str, str],
                   entries: List[Tuple[str, Optional[Node]]], next_marker: Optional[str]
                   ) -> bytes:
    """The List Blobs body: ``entries`` are blobs ``(name, node)`` and, with a delimiter,
    prefixes ``(prefix, None)``, in name order."""
    include = query.get("include", "")
    items = "".join("<BlobPrefix><Name>%s</Name></BlobPrefix>" % escape(name)
                    if node is None else _blob_entry(name, node, include)
                    for name, node in entries)
    head = "".join(_element(k, query[q]) for q, k in (
        ("prefix", "Prefix"), ("marker", "Marker"), ("maxresults", "MaxResults"),
        ("delimiter", "Delimiter")) if q in query)
    return ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="%s/" '
            'ContainerName="%s">%s<Blobs>%s</Blobs>%s</EnumerationResults>'
            % (escape(base_url), escape(container), head, items,
               _element("NextMarker", next_marker or ""))).encode("utf-8")


def block_list_xml(committed: List[Tuple[str, int]], uncommitted: List[Tuple[str, int]],
                   which: str) -> bytes:
    """The Get Block List body for ``which`` (committed, uncommitted or all)."""
    def blocks(tag: str, found: List[Tuple[str, int]]) -> str:
        return "<%s>%s</%s>" % (tag, "".join(
            "<Block><Name>%s</Name><Size>%d</Size></Block>" % (escape(i), n)
            for i, n in found), tag)

    body = ""
    if which in ("committed", "all"):
        body += blocks("CommittedBlocks", committed)
    if which in ("uncommitted", "all"):
        body += blocks("UncommittedBlocks", uncommitted)
    return ('<?xml version="1.0" encoding="utf-8"?><BlockList>%s</BlockList>'
            % body).encode("utf-8")
