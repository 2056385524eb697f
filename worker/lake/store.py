"""The contract between the lake facade and a storage backend.

A store works on keys (normalised paths relative to the lake root, ``""`` for the root) and
raises builtin errors: ``FileNotFoundError``, ``FileExistsError``, ``PermissionError``,
or ``worker.RetryableError`` for transient failures that outlived the SDK's retries. The
facade in ``worker.lake`` adds path safety, staging and commit, parallelism and Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional


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

    def read_bytes(self, key: str, offset: int = 0, length: Optional[int] = None) -> bytes:
        raise NotImplementedError

    def open_read(self, key: str) -> BinaryIO:
        """A seekable binary stream that reads ranges on demand."""
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` (parents created) with ``data``."""
        raise NotImplementedError

    def upload_file(self, local_path: str, key: str) -> None:
        raise NotImplementedError

    def download_file(self, key: str, local_path: str) -> None:
        raise NotImplementedError

    def rename(self, src: str, dst: str, overwrite: bool) -> None:
        """Atomically move ``src`` to ``dst``, creating dst's parents.

        With ``overwrite=False`` an existing ``dst`` raises FileExistsError, decided by
        the storage itself (a conditional request), not by a separate existence check.
        """
        raise NotImplementedError

    def delete(self, key: str, recursive: bool = False) -> None:
        raise NotImplementedError

    def make_dirs(self, key: str) -> None:
        raise NotImplementedError

    def local_path(self, key: str) -> Optional[str]:
        """The key's path on this machine's disk, when the store is local (else None)."""
        return None

    def close(self) -> None:
        """Release clients and connections."""
