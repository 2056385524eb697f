"""``ctx.lake``: files in the Data Lake (or a local folder) by paths relative to a root.

Writes are atomic and transactional: each write lands at a staging path in the same file
system (``.worker-staging/<job>/<task>/<run>/...``) and is renamed into place only when the
handler returns successfully (:meth:`Lake.commit`, called by the harness), all outputs or
none (the protocol is in :mod:`worker.lake.commit`). Reads see the task's own staged writes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import (
    Any,
    BinaryIO,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

from ..errors import InputNotFound, WorkerError
from ..progress import Progress
from .commit import STAGING_DIR, Output, is_staging
from .parallel import run_parallel
from .paths import glob_regex, has_magic, split_glob, to_key
from .store import FileInfo, Store

log = logging.getLogger(__name__)

_HASH_ALONGSIDE = 8 << 20  # files from this size on are hashed while they upload
_DATA_SUFFIXES = (".parquet", ".pq", ".csv", ".json", ".jsonl", ".ndjson")

__all__ = ["Lake", "FileInfo", "Store", "STAGING_DIR", "open_store"]


class Lake:
    """A lake root with staged, committed writes. Created by the context on first use.

    ``task_key`` names the task's staging folder (``job/task`` on Batch), the same in every
    run of the task, so a rerun finds and finishes what an earlier run left; ``run_id``
    tells the runs apart (random by default).
    """

    def __init__(
        self,
        store: Store,
        task_key: str,
        *,
        run_id: Optional[str] = None,
        concurrency: int = 8,
        scratch: Optional[Callable[[], Path]] = None,
    ) -> None:
        from .commit import Committer

        self.store = store
        self.concurrency = max(1, concurrency)
        self._scratch = scratch  # local disk for files on their way up (the task's scratch)
        self._staged: Dict[str, Output] = {}
        self._outputs: List[Dict[str, Any]] = []
        self._arrow_reads: Any = None  # reads pyarrow's IO threads run (streamed datasets)
        self._committer = Committer(
            store, task_key, run_id or os.urandom(4).hex(),
            lambda fn, items: run_parallel(fn, items, self.concurrency, settle=True))

    @property
    def url(self) -> str:
        """Where the root is (no credentials in it)."""
        return self.store.url

    # -- reading -------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """True when ``path`` is a file or folder (or a write staged by this task)."""
        key = to_key(path)
        if key in self._staged:
            return True
        try:
            self.store.info(key)
        except FileNotFoundError:
            return False
        return True

    def info(self, path: str) -> FileInfo:
        """Size, kind and modification time of ``path``."""
        return self.store.info(self._readable(to_key(path)))

    def ls(self, path: str = "", recursive: bool = False) -> List[FileInfo]:
        """Entries under folder ``path`` (the staging area is never listed)."""
        key = to_key(path)
        return [e for e in self.store.list(key, recursive) if not is_staging(e.path)]

    def glob(self, pattern: str) -> List[str]:
        """Paths of the files matching ``pattern``; ``**`` matches any depth."""
        return [e.path for e in self._glob_entries(pattern)]

    def _glob_entries(self, pattern: str) -> List[FileInfo]:
        folder, rest = split_glob(pattern)
        regex = glob_regex(rest)
        recursive = "**" in rest or "/" in rest
        try:
            entries = self.ls(folder, recursive=recursive)
        except FileNotFoundError:
            return []
        start = len(folder) + 1 if folder else 0
        return [e for e in entries if not e.is_dir and regex.match(e.path[start:])]

    def read_bytes(self, path: str) -> bytes:
        """The whole content of a file."""
        return self.store.read_bytes(self._readable(to_key(path)))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """The content of a text file."""
        return self.read_bytes(path).decode(encoding)

    def open(self, path: str, mode: str = "rb") -> BinaryIO:
        """A seekable stream reading ranges on demand: a 50 GB file never sits in memory."""
        if mode != "rb":
            raise ValueError(f"lake.open supports mode 'rb' only, not {mode!r}; use write_*")
        return self.store.open_read(self._readable(to_key(path)))

    def files(self, path_or_glob: str) -> List[str]:
        """The data files a path names: one file, every file in a folder, or a glob."""
        return [e.path for e in self.file_infos(path_or_glob)]

    def file_infos(self, path_or_glob: str) -> List[FileInfo]:
        """``files`` with their sizes, sorted by path (from the listing: no extra requests)."""
        if has_magic(path_or_glob):
            found = self._glob_entries(path_or_glob)
        else:
            single = self.info(path_or_glob)
            if single.is_dir:
                found = [
                    e for e in self.ls(path_or_glob, recursive=True)
                    if not e.is_dir and _is_data_file(e.path)
                ]
            else:
                found = [replace(single, path=to_key(path_or_glob))]
        if not found:
            raise InputNotFound(f"no files match {path_or_glob!r} in the lake {self.url}")
        return sorted(found, key=lambda e: e.path)

    def download(self, remote: str, local: str) -> List[str]:
        """Copy a file, or every file below a folder or glob, to local disk; returns paths.
        A file goes into ``local`` when it is a folder or ends with ``/``, else to it."""
        key = to_key(remote)
        single = None if has_magic(remote) else self.info(remote)
        if single is not None and not single.is_dir:
            target = Path(local)
            if target.is_dir() or local.endswith(("/", os.sep)):  # "out/": a folder, made
                target = target / Path(key).name
            pairs, total = [(key, target)], single.size
        else:
            base = split_glob(remote)[0] if has_magic(remote) else key
            entries = self._glob_entries(remote) if has_magic(remote) else [
                e for e in self.ls(key, recursive=True) if not e.is_dir]
            pairs = [(e.path, Path(local) / _relative(e.path, base)) for e in entries]
            total = sum(e.size for e in entries)
        self._transfer("download", pairs, self._download_one, total)
        return [str(p) for _, p in pairs]

    # -- writing (staged until commit) ---------------------------------------------------

    def write_bytes(self, path: str, data: bytes, overwrite: bool = True) -> None:
        """Stage ``data`` for ``path``; it appears there when the task succeeds."""
        key = self._writable(path)
        tmp = self._committer.staged_key(key)
        md5 = hashlib.md5(data).hexdigest()
        with _naming(key, tmp):
            self.store.write_bytes(tmp, bytes(data), md5)
        self._stage(key, tmp, len(data), md5, overwrite)

    def write_text(
        self, path: str, text: str, overwrite: bool = True, encoding: str = "utf-8"
    ) -> None:
        """Stage ``text`` for ``path``."""
        self.write_bytes(path, text.encode(encoding), overwrite=overwrite)

    def upload(self, local: str, remote: str, overwrite: bool = True,
               source: Optional[str] = None) -> List[str]:
        """Stage a local file, or a folder's files, for ``remote``; returns lake paths.
        ``source`` (e.g. the input it was made from) is recorded with each output."""
        origin = Path(local)
        if not origin.exists():
            raise FileNotFoundError(f"cannot upload {local!r}: no such file or folder")
        if origin.is_dir():
            base = self._writable(remote)
            files = sorted(p for p in origin.rglob("*") if p.is_file())
            pairs = [(p, _join(base, p.relative_to(origin).as_posix())) for p in files]
        else:
            pairs = [(origin, self._writable(remote))]
        self._transfer("upload", pairs, lambda item: self._upload_one(item, overwrite, source))
        return [key for _, key in pairs]

    def delete(self, path: str, recursive: bool = False) -> None:
        """Delete a file, or a folder with ``recursive=True``; immediate, not staged."""
        key = self._writable(path)
        staged = self._staged.pop(key, None)
        if staged is not None:
            self.store.delete(staged.src)
            return
        self.store.delete(key, recursive=recursive)

    # -- Arrow / Parquet -----------------------------------------------------------------

    def dataset(self, path_or_glob: str, format: Optional[str] = None, **options: Any):
        """A file, folder or glob of parquet/CSV/JSON to query with ``ctx.sql`` by name."""
        from .dataset import Dataset

        return Dataset(self, path_or_glob, format, **options)

    def read_table(self, path_or_glob: str, columns: Optional[Sequence[str]] = None):
        """A ``pyarrow.Table`` from one parquet file, a folder of them, or a glob."""
        from .arrow import read_table

        return read_table(self, self.files(path_or_glob), columns)

    def write_table(
        self,
        table,
        path: str,
        overwrite: bool = True,
        partition_by: Optional[Sequence[str]] = None,
        **parquet_options,
    ) -> List[str]:
        """Write a table as parquet: one file at ``path``, or with ``partition_by`` a folder
        of hive partitions (``path/col=value/...``); returns the lake paths written.

        ``table`` is a pyarrow Table, a pandas DataFrame or a DuckDB relation; a relation is
        written by DuckDB to local disk first (streaming, within its memory limit), then
        uploaded. Every file is recorded with its row count.
        """
        from .arrow import is_duckdb_relation, row_count, table_to_parquet, write_parquet

        if not partition_by and not is_duckdb_relation(table):
            data, rows = table_to_parquet(table, **parquet_options)
            self.write_bytes(path, data, overwrite=overwrite)
            self._staged[to_key(path)].rows = rows
            return [to_key(path)]
        local = Path(tempfile.mkdtemp(prefix="write-", dir=self._scratch_dir()))
        try:
            target = local / ("parts" if partition_by else "part.parquet")
            write_parquet(table, str(target), partition_by, **parquet_options)
            keys = self.upload(str(target), path, overwrite=overwrite)
            files = [target] if target.is_file() else sorted(
                p for p in target.rglob("*") if p.is_file()
            )
            for key, file in zip(keys, files):
                self._staged[key].rows = row_count(str(file))
            return keys
        finally:
            shutil.rmtree(local, ignore_errors=True)

    # -- commit (called by the harness) ----------------------------------------------------

    @property
    def outputs(self) -> List[Dict[str, Any]]:
        """What :meth:`commit` put in place: path, bytes, md5 (and rows for tables)."""
        return list(self._outputs)

    @property
    def pending(self) -> List[Dict[str, Any]]:
        """What :meth:`commit` would put in place, in the same form as :attr:`outputs`."""
        return [self._staged[key].record() for key in sorted(self._staged)]

    def commit(self) -> List[Dict[str, Any]]:
        """Move every staged write into place, all or none (see ``worker.lake.commit``)."""
        staged = [self._staged[key] for key in sorted(self._staged)]
        self._committer.commit(staged)
        self._staged.clear()
        self._outputs.extend(o.record() for o in staged)
        return self.outputs

    def abort(self) -> None:
        """Forget every staged write and delete its temporary data."""
        if self._staged:
            log.info("not committing %d staged write(s): %s", len(self._staged),
                     sorted(self._staged))
        self._staged.clear()
        self._committer.abort()

    def arrow_reads(self):
        """The gate of reads Arrow runs through this lake (``worker.lake.arrowfs``)."""
        if self._arrow_reads is None:
            from .arrowfs import ReadGate

            self._arrow_reads = ReadGate()
        return self._arrow_reads

    def close(self) -> None:
        if self._arrow_reads is not None and not self._arrow_reads.close():
            log.warning("lake reads started by Arrow still run after %g s; closing anyway",
                        self._arrow_reads.TIMEOUT)
        self.store.close()

    # -- internals -----------------------------------------------------------------------

    def _scratch_dir(self) -> Optional[str]:
        return str(self._scratch()) if self._scratch is not None else None

    def _readable(self, key: str) -> str:
        staged = self._staged.get(key)
        return staged.src if staged else key

    def _writable(self, path: str) -> str:
        key = to_key(path)
        if not key or is_staging(key):
            raise ValueError(f"cannot write to {path!r}: name a file path below the lake root")
        return key

    def _stage(self, key: str, tmp: str, size: int, md5: str, overwrite: bool,
               source: Optional[str] = None) -> None:
        self._staged[key] = Output(path=key, src=tmp, size=size, md5=md5, overwrite=overwrite,
                                   source=source)

    def _download_one(self, item: Tuple[str, Path]) -> int:
        key, target = item
        target.parent.mkdir(parents=True, exist_ok=True)
        self.store.download_file(self._readable(key), str(target))
        return target.stat().st_size

    def _upload_one(self, item: Tuple[Path, str], overwrite: bool,
                    made_from: Optional[str] = None) -> int:
        source, key = item
        tmp = self._committer.staged_key(key)
        size = source.stat().st_size
        with _naming(key, tmp):
            if size < _HASH_ALONGSIDE:
                md5 = _file_md5(source)
                self.store.upload_file(str(source), tmp, md5)
            else:  # a big file: hash it while it uploads instead of reading it twice in a row
                md5 = _md5_alongside(source, lambda: self.store.upload_file(str(source), tmp))
                self.store.set_content_md5(tmp, md5)
        self._stage(key, tmp, size, md5, overwrite, made_from)
        return size

    def _transfer(self, what: str, pairs: List[tuple], one: Callable[[Any], int],
                  total: Optional[int] = None) -> None:
        """Move ``pairs`` in parallel with progress; ``total`` bytes, else local sizes."""
        if total is None:
            total = sum(_size_hint(a) for a, _ in pairs)
        with Progress(f"{what} {len(pairs)} file(s)", len(pairs), total) as progress:
            run_parallel(lambda item: progress.advance(one(item)), pairs, self.concurrency)


@contextmanager
def _naming(key: str, staged: str) -> Iterator[None]:
    """Errors of a staged write name the path the handler wrote, not the staging path."""
    try:
        yield
    except (WorkerError, OSError) as e:
        if len(e.args) == 1 and isinstance(e.args[0], str) and staged in e.args[0]:
            e.args = (e.args[0].replace(staged, key),)
        raise


def open_store(url: str, **azure_options: Any) -> Store:
    """The store a ``WORKER_LAKE_URL`` names: ``file://`` locally, else the Data Lake."""
    if url.startswith("file:"):
        from .local import LocalStore

        return LocalStore.from_url(url)
    from .azure import AzureStore  # the Azure SDK is imported only when a lake is used

    return AzureStore.from_url(url, **azure_options)


def _is_data_file(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return not name.startswith(("_", ".")) and name.lower().endswith(_DATA_SUFFIXES)


def _relative(key: str, base: str) -> str:
    return key[len(base) + 1 :] if base else key


def _join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if base else rel


def _size_hint(item: Any) -> int:
    try:
        return os.path.getsize(item) if isinstance(item, Path) else 0
    except OSError:
        return 0


def _md5_alongside(path: Path, work: Callable[[], None]) -> str:
    """MD5 of ``path`` computed in a thread while ``work()`` runs (hashlib releases the GIL)."""
    digest = hashlib.md5()
    stop = threading.Event()
    errors: List[BaseException] = []

    def hash_file() -> None:
        try:
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    if stop.is_set():
                        return
                    digest.update(chunk)
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)

    thread = threading.Thread(target=hash_file, name="lake-md5", daemon=True)
    thread.start()
    try:
        work()
    except BaseException:
        stop.set()  # the upload failed: stop reading the file
        raise
    finally:
        thread.join()
    if errors:
        raise errors[0]
    return digest.hexdigest()


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


