"""The ``file://`` lake: a folder on local disk behaving like the Data Lake.

It lets a handler run on a laptop or in tests before any Azure exists, with the same
atomic commit: files are written beside their destination and renamed into place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator, Optional
from urllib.parse import unquote, urlparse

from .store import FileInfo, Store


class LocalStore(Store):
    """A lake rooted at a local folder (created if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()

    @classmethod
    def from_url(cls, url: str) -> "LocalStore":
        """``file:///abs/dir`` (or ``file://relative/dir`` for a path below the cwd)."""
        parsed = urlparse(url)
        return cls(Path(unquote(parsed.netloc + parsed.path)))

    def _path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def info(self, key: str) -> FileInfo:
        path = self._path(key)
        st = path.stat()  # FileNotFoundError passes through as is
        return FileInfo(key, 0 if path.is_dir() else st.st_size, path.is_dir(), st.st_mtime)

    def list(self, key: str, recursive: bool) -> Iterator[FileInfo]:
        base = self._path(key)
        if not base.is_dir():
            raise FileNotFoundError(f"no folder {key!r} in the lake {self.url}")
        children = base.rglob("*") if recursive else base.iterdir()
        for child in sorted(children):
            yield self.info(child.relative_to(self.root).as_posix())

    def read_bytes(self, key: str, offset: int = 0, length: Optional[int] = None,
                   etag: Optional[str] = None) -> bytes:
        with self._path(key).open("rb") as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)

    def open_read(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def upload_file(self, local_path: str, key: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, path)

    def download_file(self, key: str, local_path: str) -> None:
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
