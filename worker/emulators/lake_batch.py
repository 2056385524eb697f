"""Blob Batch's wire format: a ``multipart/mixed`` body of HTTP requests, and its answer.

``POST /ACCOUNT/FS?restype=container&comp=batch`` carries up to 256 sub-requests, each part
a whole HTTP request (``DELETE /FS/BLOB HTTP/1.1``, its own headers and authorization). The
answer is 202 with a ``multipart/mixed`` body of one HTTP response per part, in order, each
with the part's ``Content-ID``. This module only splits and joins; the lake serves each
sub-request as it would a request of its own.
"""

from __future__ import annotations

import http.client
import io
import re
import uuid
from typing import List, NamedTuple, Optional

from .lake_errors import LakeError
from .server import Request, Response

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_BAD_BATCH = "One of the request inputs is not valid."


class Part(NamedTuple):
    """One sub-request and the Content-ID its answer must repeat."""

    content_id: Optional[str]
    request: Request


def _split_head(data: bytes) -> tuple:
    """``(head, rest)`` at the first blank line, whether lines end in CRLF or LF."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, rest = data.partition(separator)
        if found:
            return head, rest
    return data, b""


def _part(raw: bytes) -> Part:
    mime_head, http_text = _split_head(raw.strip(b"\r\n"))
    mime = http.client.parse_headers(io.BytesIO(mime_head + b"\r\n\r\n"))
    head, body = _split_head(http_text)
    line, _, header_text = head.partition(b"\n")
    words = line.decode("latin-1").strip().split()
    if len(words) < 2:
        raise LakeError(400, "InvalidInput", _BAD_BATCH)
    headers = http.client.parse_headers(io.BytesIO(header_text + b"\r\n\r\n"))
    return Part(mime.get("Content-ID"), Request(words[0], words[1], headers,
                                                body.rstrip(b"\r\n")))


def parse(content_type: Optional[str], body: bytes) -> List[Part]:
    """The sub-requests of a batch body; 400 InvalidInput when it is not one."""
    match = _BOUNDARY.search(content_type or "")
    if not content_type or not content_type.lower().startswith("multipart/mixed") or not match:
        raise LakeError(400, "InvalidInput", _BAD_BATCH)
    delimiter = b"--" + match.group(1).encode("latin-1")
    chunks = body.split(delimiter)
    parts = [c for c in chunks[1:] if not c.startswith(b"--")]
    if not parts:
        raise LakeError(400, "InvalidInput", _BAD_BATCH)
    return [_part(c) for c in parts]


def answer(parts: List[Part], responses: List[Response]) -> Response:
    """The 202 whose body holds each sub-request's response, in order."""
    boundary = "batchresponse_%s" % uuid.uuid4()
    out = []
    for part, response in zip(parts, responses):
        lines = ["--" + boundary, "Content-Type: application/http"]
        if part.content_id is not None:
            lines.append("Content-ID: %s" % part.content_id)
        lines += ["", "HTTP/1.1 %d %s" % (response.status, _reason(response.status))]
        lines += ["%s: %s" % h for h in response.headers]
        lines += ["x-ms-request-id: %s" % uuid.uuid4(),
                  "Content-Length: %d" % len(response.body), ""]
        out.append("\r\n".join(lines).encode("latin-1") + b"\r\n" + bytes(response.body))
    out.append(("--%s--\r\n" % boundary).encode("latin-1"))
    body = b"\r\n".join(out)
    return Response(202, [("Content-Type", "multipart/mixed; boundary=%s" % boundary)], body)


def _reason(status: int) -> str:
    return http.client.responses.get(status, "")
