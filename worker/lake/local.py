"""The ``file://`` lake: a folder on local disk behaving like the Data Lake.

It lets a handler run on a laptop or in tests before any Azure exists, with the same
atomic commit: files are written beside their destination and renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator, Optional
from urllib.parse import unquote, urlparse

from ..errors import ConfigError, FileSystemNotFound, InputNotFound
from .store import FileInfo, Store


class LocalStore(Store):
    """A lake rooted at a local folder, created by the first write. Until then a read is a
    configuration error naming WORKER_LAKE_URL: a root that does not exist is most often a
    mistyped path, not a missing input."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()
        blocker = _not_a_folder(self.root)
        if blocker is not None:
            raise ConfigError(
                f"WORKER_LAKE_URL={self.url!r}: cannot create the folder ({blocker} is not a "
                "folder); create it or point WORKER_LAKE_URL at a folder you may write",
                code="config.lake")

    @classmethod
    def from_url(cls, url: str) -> "LocalStore":
        """``file:///abs/dir`` (or ``file://relative/dir`` for a path below the cwd)."""
        parsed = urlparse(url)
        return cls(Path(unquote(parsed.netloc + parsed.path)))

    def _path(self, key: str) -> Path:
        return self.root / key if key else self.root

    @contextlib.contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """A missing path is a missing input (exit 4), named as the Data Lake names it; in
        a root that does not exist, a wrong WORKER_LAKE_URL (exit 2)."""
        try:
            yield
        except FileNotFoundError:
            raise self._missing(key) from None

    def _missing(self, key: str) -> FileNotFoundError:
        if not self.root.is_dir():
            return FileSystemNotFound(
                f"no such file or folder: {key or '/'!r}: the lake root {self.url} does not "
                "exist; fix WORKER_LAKE_URL (file:///ABSOLUTE/PATH of the folder holding the "
                "data) or create the folder", code="config.lake_root")
        return InputNotFound(f"no such file or folder: {key or '/'!r} in the lake {self.url}; "
                             "check the path, or that the task writing it ran first")

    def info(self, key: str) -> FileInfo:
        path = self._path(key)
        with self._reading(key):
            st = path.stat()
        return FileInfo(key, 0 if path.is_dir() else st.st_size, path.is_dir(), st.st_mtime)

    def list(self, key: str, recursive: bool) -> Iterator[FileInfo]:
        base = self._path(key)
        if not base.is_dir():
            if not self.root.is_dir():
                raise self._missing(key)
            raise InputNotFound(f"no folder {key!r} in the lake {self.url}")
        children = base.rglob("*") if recursive else base.iterdir()
        for child in sorted(children):
            yield self.info(child.relative_to(self.root).as_posix())

    def read_bytes(self, key: str, offset: int = 0, length: Optional[int] = None,
                   etag: Optional[str] = None) -> bytes:
        with self._reading(key), self._path(key).open("rb") as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)

    def open_read(self, key: str) -> BinaryIO:
        with self._reading(key):
            return self._path(key).open("rb")

    def content_md5(self, key: str) -> Optional[str]:
        digest = hashlib.md5()
        with self._reading(key), self._path(key).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def write_bytes(self, key: str, data: bytes, md5: Optional[str] = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_exclusive(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as f:  # O_EXCL: FileExistsError when it exists
            f.write(data)

    def upload_file(self, local_path: str, key: str, md5: Optional[str] = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, path)

    def download_file(self, key: str, local_path: str) -> None:
        with self._reading(key):
            shutil.copyfile(self._path(key), local_path)

    def rename(self, src: str, dst: str, overwrite: bool) -> None:
        target = self._path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            os.replace(self._path(src), target)
            return
        # link() fails if the target exists: an atomic create-if-absent, like If-None-Match.
        os.link(self._path(src), target)
        os.unlink(self._path(src))

    def rename_folder(self, src: str, dst: str) -> None:
        target = self._path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Linux renames onto an empty folder; mkdir first makes "must not exist" atomic.
        target.mkdir()  # FileExistsError when it exists
        try:
            os.rename(self._path(src), target)
        except OSError as e:
            with contextlib.suppress(OSError):
                target.rmdir()
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):  # another writer filled it first
                raise FileExistsError(f"{dst!r} already exists in the lake {self.url}") from e
            raise

    def delete(self, key: str, recursive: bool = False) -> None:
        path = self._path(key)
        if path.is_dir():
            if recursive:
                shutil.rmtree(path)
            else:
                path.rmdir()  # OSError(ENOTEMPTY) like DirectoryNotEmpty
        else:
            path.unlink()

    def make_dirs(self, key: str) -> None:
        self._path(key).mkdir(parents=True, exist_ok=True)

    def local_path(self, key: str) -> Optional[str]:
        return str(self._path(key))


def _not_a_folder(root: Path) -> Optional[Path]:
    """The first of ``root`` and its parents that exists, when it is not a folder (the
    root could then never be created)."""
    for path in [root, *root.parents]:
        if path.exists():
            return None if path.is_dir() else path
    return None
