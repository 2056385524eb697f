"""The application package version, through the account plane: created (with its
application when that is new), its zip uploaded to the storage URL the account plane gives
(a SAS URL: one Put Blob with the zip's Content-MD5), then activated.

A version that is there already is compared by its bytes (the blob's Content-MD5 and
length, else its content): the same zip is skipped, another is refused with the fix (a new
version), since Batch reuses an extracted version on nodes that already have it. A version
left ``pending`` by an interrupted deploy is uploaded and activated.

The storage URL carries a SAS when the account's auto-storage uses storage keys; without one
(auto-storage through a managed identity) the upload signs in with your own credential
(``Storage Blob Data Contributor`` on that storage account). A SAS that allows writing only
is read with your credential too, to compare.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import AccessError, ConflictError, NotFoundError
from .account import Clients
from .failures import request_ids, translate

BLOB_VERSION = "2021-08-06"  # Put Blob takes up to 5,000 MiB in one request from 2019-12-12
CHUNK = 4 << 20


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode("ascii")


def ensure_package(clients: Clients, app: str, version: str, archive: Optional[Path],
                   dry_run: bool = False,
                   progress: Optional[Callable[[int], None]] = None) -> str:
    """Make version ``version`` of application ``app`` the zip ``archive`` (None: only check
    that it exists); what was done, in a few words."""
    package = _get(clients, app, version)
    if archive is None:
        if package is None or _state(package) != "active":
            raise NotFoundError(
                "application %s version %s is not in Batch account %s%s: pass --package "
                "app.zip to upload it (python -m worker package builds it)"
                % (app, version, clients.target.account,
                   "" if package is None else " (it is %s)" % _state(package)))
        return "there"
    md5, size = md5_of(archive), archive.stat().st_size
    if package is not None and _state(package) == "active":
        if _same_blob(clients, package, md5, size):
            return "there with the same bytes: not uploaded again"
        raise ConflictError(
            "application %s version %s is in Batch account %s with other bytes than %s: give "
            "the package a new version (python -m worker package --version X, or [package] "
            "version), or delete that version (az batch application package delete)"
            % (app, version, clients.target.account, archive))
    if dry_run:
        return "would upload %s (%d bytes) and activate it" % (archive.name, size)
    if package is None:
        package = _create(clients, app, version)
    _upload(clients, package["properties"]["storageUrl"], archive, md5, size, progress)
    _activate(clients, app, version)
    return "uploaded (%d bytes) and activated" % size


def _state(package: Any) -> str:
    return str((package.get("properties") or {}).get("state") or "").lower()


def _get(clients: Clients, app: str, version: str) -> Optional[dict]:
    from azure.core.exceptions import ResourceNotFoundError

    t = clients.target
    try:
        return clients.mgmt.application_package.get(t.resource_group, t.account, app,
                                                    version).as_dict()
    except ResourceNotFoundError as e:
        code = str(getattr(getattr(e, "error", None), "code", "")).lower()
        if code.startswith("application"):
            return None
        raise translate(e, "reading application %s version %s" % (app, version), t.where(),
                        not_found=clients.missing_account()) from None
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "reading application %s version %s" % (app, version), t.where(),
                        not_found=clients.missing_account()) from None


def _create(clients: Clients, app: str, version: str) -> dict:
    from azure.core.exceptions import ResourceNotFoundError

    t = clients.target
    doing = "creating application %s version %s" % (app, version)
    try:
        try:
            return clients.mgmt.application_package.create(
                t.resource_group, t.account, app, version).as_dict()
        except ResourceNotFoundError:  # the application is new too
            clients.mgmt.application.create(t.resource_group, t.account, app,
                                            {"properties": {"displayName": app,
                                                            "allowUpdates": True}})
            return clients.mgmt.application_package.create(
                t.resource_group, t.account, app, version).as_dict()
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, doing, t.where(), not_found=clients.missing_account()) from None


def _activate(clients: Clients, app: str, version: str) -> None:
    t = clients.target
    try:
        clients.mgmt.application_package.activate(t.resource_group, t.account, app, version,
                                                  {"format": "zip"})
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, "activating application %s version %s" % (app, version),
                        t.where()) from None


# -- the blob behind the storage URL ---------------------------------------------------------


def _has_sas(url: str) -> bool:
    return "sig=" in url.partition("?")[2]


def _blob_client(clients: Clients, signed: bool, purpose: str) -> Any:
    """A pipeline for the package's blob: the URL's SAS (``signed``), else a bearer token of
    the caller's for storage; its requests counted as ``purpose`` (``upload``: the zip sent,
    ``compare``: the version there read)."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import (
        BearerTokenCredentialPolicy,
        HeadersPolicy,
        RequestIdPolicy,
        RetryPolicy,
        UserAgentPolicy,
    )

    from ...identity import STORAGE_SCOPE

    policies = [RequestIdPolicy(), HeadersPolicy({"x-ms-version": BLOB_VERSION}),
                UserAgentPolicy("batch-worker-deploy"), RetryPolicy(retry_total=3)]
    if not signed:
        policies.append(BearerTokenCredentialPolicy(clients.credential, STORAGE_SCOPE))
    return PipelineClient("", policies=policies + [clients.counter(purpose)])


def _upload(clients: Clients, url: str, archive: Path, md5: str, size: int,
            progress: Optional[Callable[[int], None]]) -> None:
    from azure.core.rest import HttpRequest

    with archive.open("rb") as handle, _blob_client(clients, _has_sas(url), "upload") as client:
        body = _Counted(handle, progress)
        request = HttpRequest("PUT", url, content=body, headers={
            "x-ms-blob-type": "BlockBlob", "Content-MD5": md5, "Content-Length": str(size),
            "Content-Type": "application/zip"})
        _send(client, request, "uploading %s" % archive.name, clients)


def _same_blob(clients: Clients, package: dict, md5: str, size: int) -> bool:
    url = (package.get("properties") or {}).get("storageUrl") or ""
    if not url:
        return False
    try:
        return _compare(clients, url, _has_sas(url), md5, size)
    except AccessError:
        if not _has_sas(url):
            raise
    return _compare(clients, url.partition("?")[0], False, md5, size)  # a write-only SAS


def _compare(clients: Clients, url: str, signed: bool, md5: str, size: int) -> bool:
    from azure.core.rest import HttpRequest

    with _blob_client(clients, signed, "compare") as client:
        head = _send(client, HttpRequest("HEAD", url), "reading the package there", clients)
        if int(head.headers.get("Content-Length") or -1) != size:
            return False
        if head.headers.get("Content-MD5"):
            return head.headers["Content-MD5"] == md5
        response = _send(client, HttpRequest("GET", url), "reading the package there",
                         clients, stream=True)
        digest = hashlib.md5()
        for block in response.iter_bytes():
            digest.update(block)
        return base64.b64encode(digest.digest()).decode("ascii") == md5


def _send(client: Any, request: Any, doing: str, clients: Clients, stream: bool = False) -> Any:
    from azure.core.exceptions import HttpResponseError

    try:
        response = client.send_request(request, stream=stream)
        response.raise_for_status()
    except HttpResponseError as e:
        if e.status_code in (401, 403):  # storage's refusal: its own role
            raise AccessError(
                "%s: %d %s%s: the storage URL the account plane gave is not enough; ask for "
                "\"Storage Blob Data Contributor\" on the Batch account's auto-storage account"
                % (doing, e.status_code, e.reason or "", request_ids(e))) from None
        raise translate(e, doing, clients.target.where()) from None
    except Exception as e:  # the SDK's errors, translated at this boundary
        raise translate(e, doing, clients.target.where()) from None
    return response


class _Counted:
    """A file object that reports the bytes read from it (the upload's progress)."""

    def __init__(self, handle: Any, progress: Optional[Callable[[int], None]]) -> None:
        self.handle, self.progress = handle, progress or (lambda n: None)

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.progress(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()

    def __iter__(self):
        return iter(lambda: self.read(CHUNK), b"")
