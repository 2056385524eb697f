"""The contract between the lake facade and a storage backend.

A store works on keys (normalised paths relative to the lake root, ``""`` for the root) and
raises builtin errors: ``FileNotFoundError``, ``FileExistsError``, ``PermissionError``,
or ``worker.RetryableError`` for transient failures that outlived the retries. The
facade in ``worker.lake`` adds path safety, staging and commit, parallelism and Arrow.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Union


@dataclass(frozen=True)
class FileInfo:
    """One path in the lake."""

    path: str
    size: int
    is_dir: bool
    modified: Optional[float] = None  # seconds since the epoch
    etag: Optional[str] = None


class Store:
    """Abstract backend; see the module docstring for the error contract."""

    #: A printable location of the root, for messages (no credentials in it).
    url: str = ""

    def info(self, key: str) -> FileInfo:
        raise NotImplementedError

    def list(self, key: str, recursive: bool) -> Iterator[FileInfo]:
        """Entries under folder ``key``; FileNotFoundError when it does not exist."""
        raise NotImplementedError

    def read_bytes(self, key: str, offset: int = 0, length: Optional[int] = None,
                   etag: Optional[str] = None) -> bytes:
        """``length`` bytes from ``offset`` (to the end if None). With ``etag`` (from
        :class:`FileInfo`), a file changed since raises ``RetryableError``: a file read in
        several pieces stays one version. Stores without etags ignore it."""
        raise NotImplementedError

    def open_read(self, key: str) -> BinaryIO:
        """A seekable binary stream that reads ranges on demand."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        try:
            self.info(key)
        except FileNotFoundError:
            return False
        return True

    def content_md5(self, key: str) -> Optional[str]:
        """The hex MD5 the file was stored with (None when the store does not know it)."""
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes, md5: Optional[str] = None) -> None:
        """Create or replace ``key`` (parents created) with ``data``; ``md5`` (hex) is
        stored with it, for :meth:`content_md5`."""
        raise NotImplementedError

    def set_content_md5(self, key: str, md5: str) -> None:
        """Record ``md5`` on a file written before its hash was known (stores that compute
        :meth:`content_md5` from the bytes need not)."""

    def put_exclusive(self, key: str, data: bytes) -> None:
        """Create ``key`` with ``data``; FileExistsError when it exists (decided by the
        storage: a conditional request)."""
        raise NotImplementedError

    def upload_file(self, local_path: str, key: str, md5: Optional[str] = None) -> None:
        raise NotImplementedError

    def download_file(self, key: str, local_path: str) -> None:
        raise NotImplementedError

    def rename(self, src: str, dst: str, overwrite: bool) -> None:
        """Atomically move ``src`` to ``dst``, creating dst's parents.

        With ``overwrite=False`` an existing ``dst`` raises FileExistsError, decided by
        the storage itself (a conditional request), not by a separate existence check.
        """
        raise NotImplementedError

    def rename_folder(self, src: str, dst: str) -> None:
        """Move folder ``src`` with everything below it to ``dst``, which must not exist
        (FileExistsError otherwise); dst's parents are created."""
        raise NotImplementedError

    def delete(self, key: str, recursive: bool = False) -> None:
        raise NotImplementedError

    def make_dirs(self, key: str) -> None:
        raise NotImplementedError

    def check_namespace(self) -> None:
        """Raise ``ConfigError`` when the store cannot move a folder in one atomic rename
        (a flat Blob Storage account); stores that can need not check."""

    def local_path(self, key: str) -> Optional[str]:
        """The key's path on this machine's disk, when the store is local (else None)."""
        return None

    def close(self) -> None:
        """Release clients and connections."""


class RangedReader(io.RawIOBase):
    """A seekable raw stream over one file of a store: every read is one ranged read, so
    nothing big is held (wrap it in ``io.BufferedReader`` for small reads). With ``etag``
    every read is of that version (see :meth:`Store.read_bytes`)."""

    def __init__(self, store: Store, key: str, size: int, etag: Optional[str] = None) -> None:
        self._store = store
        self._key = key
        self._size = size
        self._etag = etag
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def size(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: Optional[int] = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._fetch(self._pos, end - self._pos)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _fetch(self, offset: int, length: int) -> bytes:
        return self._store.read_bytes(self._key, offset, length, etag=self._etag)


def write_at(target: Union[str, Path], offset: int, data: bytes) -> int:
    """Write ``data`` at ``offset`` of an existing file; returns its length. Each write opens
    the file itself, so a read still in flight after another one failed (and its caller
    moved on) never writes through a descriptor closed or reused under it."""
    fd = os.open(str(target), os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)
    return len(data)
