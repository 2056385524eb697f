"""The Data Lake Gen2 store: ``ctx.lake`` on Azure (or the loopback emulator).

Its calls go out as plain REST requests (:mod:`worker.lake.rest`) through azure-core's
pipeline over a lean urllib3 transport (:mod:`worker.lake.http`, :mod:`worker.lake.transport`),
one pool per store, shared by every thread, authenticated with the process's credential
(``worker.identity``); the storage SDK is not used. Errors become
builtin ones here, in :func:`_translate`, so handlers never see ``azure.core.exceptions``:

| service answer                      | raised                                               |
|-------------------------------------|------------------------------------------------------|
| 404 (path missing)                  | InputNotFound, a FileNotFoundError (exit 4)          |
| 404 (file system missing)           | FileSystemNotFound (exit 2)                          |
| 409 PathAlreadyExists, 412          | FileExistsError (the commit decides what it means)   |
| 412 on a read pinned to an etag     | RetryableError: the file changed (exit 3)            |
| 409 DirectoryNotEmpty               | OSError(ENOTEMPTY)                                   |
| 403, no token                       | AccessDenied, a PermissionError naming identity,     |
|                                     | path and role (exit 2)                               |
| 401 (the token refused)             | AccessDenied naming the endpoint to check (exit 2)   |
| 408, 429, 5xx, connection errors    | RetryableError (exit 3)                              |
| untrusted certificate, unknown host | ConfigError (exit 2)                                 |

Retries (azure-core's ``RetryPolicy``, see :mod:`worker.lake.http`) are ``retry_total``
retries, the first at once, then after ``retry_backoff`` x 2, 4 ... seconds from the
configuration, or after the service's ``Retry-After`` (seconds or an HTTP date) or
``retry-after-ms``, 429 included.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import os
import threading
from contextlib import contextmanager
from typing import Any, BinaryIO, Callable, Dict, Iterator, Optional, Set, Tuple
from urllib.parse import quote, unquote, urlparse

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..connection import connection_error
from ..errors import (
    AccessDenied,
    ConfigError,
    FileSystemNotFound,
    InputNotFound,
    RetryableError,
    describe_service,
)
from ..identity import get_credential, identity_name, token_error
from .http import is_transient
from .parallel import run_parallel
from .store import FileInfo, RangedReader, Store, write_at

READ_ROLE = "Storage Blob Data Reader"
WRITE_ROLE = "Storage Blob Data Contributor"
_DFS_SUFFIX = ".dfs.core.windows.net"


class AzureStore(Store):
    """A lake root in an ADLS Gen2 file system: ``account_url``, ``filesystem``, ``prefix``."""

    def __init__(self, account_url: str, filesystem: str, prefix: str, config=None,
                 url: str = "") -> None:
        from ..config import Config

        self.config = config or Config.from_env()
        self.account_url = account_url
        self.filesystem = filesystem
        self.prefix = prefix.strip("/")
        self.url = url or f"{account_url}/{filesystem}/{self.prefix}".rstrip("/")
        self._rest: Any = None
        self._lock = threading.Lock()
        self._made_dirs: Set[str] = set()
        self._namespace_checked = False

    @classmethod
    def from_url(cls, url: str, config=None) -> "AzureStore":
        """``abfss://FS@ACCOUNT.dfs.core.windows.net/PREFIX``, ``https://ACCOUNT.dfs...
        /FS/PREFIX``, or path-style ``https://127.0.0.1:PORT/ACCOUNT/FS/PREFIX``."""
        account_url, filesystem, prefix = parse_lake_url(url)
        printable = url.split("?", 1)[0].rstrip("/")
        return cls(account_url, filesystem, prefix, config=config, url=printable)

    # -- clients -------------------------------------------------------------------------

    @property
    def rest(self):
        """The lake's calls as plain REST requests (``worker.lake.rest``), created on first
        use: a third to a half of the client CPU of the storage SDK's per call."""
        with self._lock:
            if self._rest is None:
                from .http import LakeHttp
                from .rest import LakeRest

                http = LakeHttp(get_credential(self.config),
                                self.config.transfer_concurrency
                                * self.config.lake_file_concurrency,
                                self.config.environ, self.account_url,
                                self.config.retry_total, self.config.retry_backoff)
                self._rest = LakeRest(f"{_blob_url(self.account_url)}/{quote(self.filesystem)}",
                                      f"{self.account_url}/{quote(self.filesystem)}", http)
            return self._rest

    def close(self) -> None:
        with self._lock:
            if self._rest is not None:
                self._rest.close()
            self._rest = None

    def _path(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key) if p)

    def _key(self, path: str) -> str:
        return path[len(self.prefix) + 1:] if self.prefix else path

    @contextmanager
    def _errors(self, action: str, key: str, write: bool = False) -> Iterator[None]:
        try:
            yield
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as e:
            raise _translate(e, self, action, key, write) from e

    # -- reading -------------------------------------------------------------------------

    def info(self, key: str) -> FileInfo:
        path = self._path(key)
        if not path:
            return FileInfo("", 0, True)
        with self._errors("read", key):
            props = self.rest.properties(path)
        size = 0 if props["is_dir"] else props["size"]
        return FileInfo(key, size, props["is_dir"], props["modified"], props["etag"])

    def list(self, key: str, recursive: bool) -> Iterator[FileInfo]:
        path = self._path(key)
        with self._errors("list", key):
            for entry in self.rest.list_paths(path, recursive):
                yield FileInfo(self._key(entry["name"]), entry["size"], entry["is_dir"],
                               entry["modified"], entry["etag"])

    def read_bytes(self, key: str, offset: int = 0, length: Optional[int] = None,
                   etag: Optional[str] = None) -> bytes:
        if length == 0:
            return b""
        with self._errors("read", key):
            if length is not None:
                return self.rest.read(self._path(key), offset, length, etag)
            pieces: Dict[int, bytes] = {}
            self._read_to_end(key, offset, etag, pieces.__setitem__)
            return b"".join(pieces[start] for start in sorted(pieces))

    def open_read(self, key: str) -> BinaryIO:
        found = self.info(key)
        raw = RangedReader(self, key, found.size, found.etag)
        return io.BufferedReader(raw, buffer_size=self.config.lake_chunk_size)  # type: ignore

    def download_file(self, key: str, local_path: str) -> None:
        open(local_path, "wb").close()
        with self._errors("read", key):
            self._read_to_end(key, 0, None, lambda start, data: write_at(local_path, start, data))

    def _read_to_end(self, key: str, offset: int, etag: Optional[str],
                     put: Callable[[int, bytes], Any]) -> None:
        """Hand ``put(start, piece)`` the file from ``offset`` on, in pieces of
        ``WORKER_LAKE_CHUNK_SIZE``: the first tells the size and pins the version (etag), the
        rest follow in parallel, ``WORKER_LAKE_FILE_CONCURRENCY`` at a time."""
        chunk = self.config.lake_chunk_size
        path = self._path(key)
        first, size, etag = self.rest.read_head(path, chunk, offset, etag)
        put(offset, first)

        def piece(start: int) -> None:
            put(start, self.rest.read(path, start, min(chunk, size - start), etag))

        run_parallel(piece, range(offset + len(first), size, chunk),
                     self.config.lake_file_concurrency)

    # -- writing -------------------------------------------------------------------------

    def write_bytes(self, key: str, data: bytes, md5: Optional[str] = None) -> None:
        with self._errors("write", key, write=True):
            if len(data) <= self.config.lake_chunk_size:
                self._put_small(key, data, md5)
                return
            self._upload_pieces(key, len(data), lambda start, n: data[start:start + n], md5)

    def put_exclusive(self, key: str, data: bytes) -> None:
        with self._errors("write", key, write=True):
            self.rest.put(self._path(key), data, exclusive=True)

    def upload_file(self, local_path: str, key: str, md5: Optional[str] = None) -> None:
        size = os.path.getsize(local_path)
        if size <= self.config.lake_chunk_size:
            with open(local_path, "rb") as f:
                data = f.read()
            with self._errors("write", key, write=True):
                self._put_small(key, data, md5)
            return
        fd = os.open(local_path, os.O_RDONLY)
        try:
            with self._errors("write", key, write=True):
                self._upload_pieces(key, size, lambda start, n: os.pread(fd, n, start), md5)
        finally:
            os.close(fd)

    def set_content_md5(self, key: str, md5: str) -> None:
        """Record ``md5`` on a file uploaded before its hash was known (a big upload hashes
        while it streams)."""
        with self._errors("write", key, write=True):
            self.rest.set_md5(self._path(key), md5)

    def content_md5(self, key: str) -> Optional[str]:
        with self._errors("read", key):
            return self.rest.properties(self._path(key))["md5"]

    def _put_small(self, key: str, data: bytes, md5: Optional[str]) -> None:
        """One request: Blob Put Blob, which on a hierarchical namespace creates (or
        replaces) the file and its missing parents at once (a Data Lake create, append and
        flush would be three)."""
        self.rest.put(self._path(key), data, md5)

    def _upload_pieces(self, key: str, size: int, piece: Callable[[int, int], bytes],
                       md5: Optional[str]) -> None:
        """A big upload: create the file, append its pieces of ``WORKER_LAKE_CHUNK_SIZE``
        (``piece(start, length)`` reads one) ``WORKER_LAKE_FILE_CONCURRENCY`` at a time,
        then flush them as its content (the file is empty until then: the lake facade
        uploads into the task's staging folder, which no reader looks at). Each thread
        reads its own piece, so memory holds only the pieces in flight."""
        path = self._path(key)
        chunk = self.config.lake_chunk_size

        def append(start: int) -> None:
            self.rest.append(path, start, piece(start, min(chunk, size - start)))

        self.rest.create_file(path)
        run_parallel(append, range(0, size, chunk), self.config.lake_file_concurrency)
        self.rest.flush(path, size, md5)

    def rename(self, src: str, dst: str, overwrite: bool) -> None:
        self._renaming(dst, lambda: self.rest.rename(self._path(src), self._path(dst),
                                                     exclusive=not overwrite))

    def rename_folder(self, src: str, dst: str) -> None:
        self._renaming(dst, lambda: self.rest.rename(self._path(src), self._path(dst),
                                                     exclusive=True))

    def _renaming(self, dst: str, rename: Callable[[], Any]) -> None:
        """Run ``rename()`` after making dst's parent (the service does not make a rename's
        parents), once more if the parent vanished since we made it."""
        parent = dst.rsplit("/", 1)[0] if "/" in dst else ""
        self.make_dirs(parent)
        with self._errors("write", dst, write=True):
            try:
                rename()
            except ResourceNotFoundError as e:
                if _error_code(e) != "RenameDestinationParentPathNotFound":
                    raise
                self._forget_dirs(parent)  # deleted behind our back since we made it
                self.make_dirs(parent)
                rename()

    def check_namespace(self) -> None:
        """A commit's renames are atomic only on a hierarchical namespace: on a flat account
        a folder "rename" is a copy and delete per file, which may move part of a folder and
        still report success. Asked once per store (Get Account Information)."""
        if self._namespace_checked:
            return
        with self._errors("check of the account of", ""):
            hierarchical = self.rest.hierarchical_namespace()
        if hierarchical is False:
            raise ConfigError(
                f"the storage account of the lake {self.url} has no hierarchical namespace (a "
                "flat Blob Storage account): renames there are not atomic, a folder may move "
                "only in part, so the worker commits nothing to it; point WORKER_LAKE_URL at "
                "an account with hierarchical namespace (Data Lake Storage Gen2) enabled, or "
                "upgrade this one (az storage account hns-migration start)",
                code="config.flat_namespace")
        self._namespace_checked = True

    def delete(self, key: str, recursive: bool = False) -> None:
        path = self._path(key)
        if not path:
            raise ValueError(f"refusing to delete the whole file system {self.url}")
        with self._errors("write", key, write=True):
            self.rest.delete(path, recursive)
        self._forget_dirs(key)

    def _forget_dirs(self, key: str) -> None:
        with self._lock:
            self._made_dirs = {d for d in self._made_dirs if not _under(d, key)}

    def make_dirs(self, key: str) -> None:
        path = self._path(key)
        with self._lock:
            if not path or key in self._made_dirs:
                return
        with self._errors("write", key, write=True):
            self.rest.make_dir(path)
        with self._lock:
            self._made_dirs.add(key)


def _blob_url(account_url: str) -> str:
    """The account's Blob endpoint: the first ``.dfs.`` becomes ``.blob.``, as the SDK does
    (a path-style emulator URL serves both APIs and stays as it is)."""
    return account_url.replace(".dfs.", ".blob.", 1)


def parse_lake_url(url: str) -> Tuple[str, str, str]:
    """(account URL, file system, prefix) from a ``WORKER_LAKE_URL``."""
    parsed = urlparse(url)
    if parsed.query or parsed.password:
        raise ConfigError(
            "WORKER_LAKE_URL must not carry a SAS token, key or query string: the worker "
            "authenticates with its managed identity; remove everything from the '?' on "
            "(and any user:password@)"
        )
    parts = [unquote(p) for p in parsed.path.split("/") if p]
    if parsed.scheme == "abfss" and "@" in parsed.netloc:
        filesystem, host = parsed.netloc.split("@", 1)
        return f"https://{host}", filesystem, "/".join(parts)
    if parsed.scheme != "https":
        raise ConfigError(
            f"WORKER_LAKE_URL={url!r} is not a lake URL; use abfss://FS@ACCOUNT{_DFS_SUFFIX}"
            f"/PREFIX, https://ACCOUNT{_DFS_SUFFIX}/FS/PREFIX or file:///DIR (https only: "
            "tokens are never sent over plain http)"
        )
    if _is_path_style(parsed.hostname or "") and len(parts) >= 2:
        return f"https://{parsed.netloc}/{parts[0]}", parts[1], "/".join(parts[2:])
    if not parts:
        raise ConfigError(f"WORKER_LAKE_URL={url!r} names no file system: add /FILESYSTEM")
    return f"https://{parsed.netloc}", parts[0], "/".join(parts[1:])


def _is_path_style(host: str) -> bool:
    """Loopback names and IP addresses carry the account in the path (the emulator)."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _under(path: str, key: str) -> bool:
    return not key or path == key or path.startswith(key + "/")


def _translate(error: Exception, store: AzureStore, action: str, key: str,
               write: bool) -> Exception:
    """Our (or the builtin) exception for an SDK error; messages carry no secrets, and
    quote what the service said and the request ids (``service_details``, which the
    result record keeps too)."""
    translated = _translated(error, store, action, key, write)
    details = getattr(error, "service_details", None)
    if details is not None:
        translated.service_details = details  # type: ignore[attr-defined]
    return translated


def _translated(error: Exception, store: AzureStore, action: str, key: str,
                write: bool) -> Exception:
    where = f"{key or '/'!r} in the lake {store.url}"
    details = getattr(error, "service_details", None) or {}
    said = describe_service(details)
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        failed = connection_error(error, f"lake {action} of {where}", "WORKER_LAKE_URL",
                                  store.config.environ)
        if said:  # the client request id: the request may have reached the service
            failed.args = (f"{failed} ({said})",)
        return failed
    status = getattr(error, "status_code", None)
    code = _error_code(error)
    reason = said or f"{status or ''} {code}".strip()
    if status == 401:  # the token itself refused: no role assignment fixes that
        return AccessDenied(_unauthenticated(store, action, where, reason))
    if status == 403:
        return AccessDenied(_forbidden(store, action, where, write, reason))
    if isinstance(error, ClientAuthenticationError):  # the credential gave no token
        return token_error(error, store.config, f"the lake {store.url}")
    if status == 404:
        if code in ("FilesystemNotFound", "ContainerNotFound"):
            return FileSystemNotFound(
                f"the file system {store.filesystem!r} of the lake {store.url} does not exist "
                f"({reason}); create it or fix WORKER_LAKE_URL"
            )
        return InputNotFound(f"no such file or folder: {where} ({reason}); check the path, "
                             "or that the task writing it ran first")
    if status == 400 and code in ("InvalidUri", "InvalidResourceName", "AccountNotFound"):
        return ConfigError(
            f"the lake {store.url} is not a storage account and file system the service knows "
            f"({reason}); check the account and file system names in WORKER_LAKE_URL "
            f"(abfss://FILESYSTEM@ACCOUNT{_DFS_SUFFIX}/PREFIX)", code="config.lake_url")
    if status == 412 and action == "read":
        return RetryableError(
            f"{where} changed while it was being read ({reason}); run the task again to "
            "read the new version whole"
        )
    if status in (409, 412) and code in ("PathAlreadyExists", "ConditionNotMet",
                                         "BlobAlreadyExists"):
        return FileExistsError(f"{where} already exists ({reason})")
    if status == 409 and code == "DirectoryNotEmpty":
        return OSError(errno.ENOTEMPTY, f"folder {where} is not empty; use recursive=True")
    if status and is_transient(status):
        return RetryableError(
            f"lake {action} of {where} failed after the retries ({reason})"
        )
    return OSError(f"lake {action} of {where} failed ({reason})")


def _unauthenticated(store: AzureStore, action: str, where: str, reason: str) -> str:
    return (
        f"lake {action} of {where}: the service refused the token of "
        f"{identity_name(store.config)} ({reason}); a token for Azure Storage it does not "
        "accept (another audience, tenant or cloud, or one expired): check that WORKER_LAKE_URL "
        f"names the storage account's Data Lake endpoint (abfss://FILESYSTEM@ACCOUNT{_DFS_SUFFIX}, "
        "or the emulators' lake, not their vault) and that the identity is in its tenant"
    )


def _forbidden(store: AzureStore, action: str, where: str, write: bool, reason: str) -> str:
    who = identity_name(store.config)
    role = WRITE_ROLE if write else READ_ROLE
    return (
        f"{who} may not {action} {where} ({reason}); grant it the "
        f"role '{role}' on the storage account or file system {store.filesystem!r}"
    )


def _error_code(error: Exception) -> str:
    """The service's error code (header or body), e.g. ``PathNotFound``."""
    body = getattr(error, "error", None)
    code = getattr(error, "error_code", None) or getattr(body, "code", None)
    return str(code or "")
