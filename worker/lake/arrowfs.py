"""The lake as a read-only ``pyarrow.fs`` filesystem: Arrow reads byte ranges on demand.

:func:`arrow_dataset` builds a ``pyarrow.dataset.Dataset`` over lake parquet files whose
reads go through :class:`LakeFileSystemHandler` to the lake's store: every read Arrow asks
for is one ranged GET (``Store.read_bytes(key, offset, length)``), nothing is downloaded
whole. Registered with DuckDB, the scan gets DuckDB's projection and filter pushdown, so a
query naming 2 of 6 columns fetches those column chunks and the footers only. Parquet's
``pre_buffer`` coalesces the ranges of a row group (holes and request sizes chosen for a
network store, :data:`NETWORK`) and issues them on pyarrow's IO thread pool, sized from
``WORKER_TRANSFER_CONCURRENCY``.

This module imports pyarrow at the top: it is itself imported only when a dataset is read.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from .failures import remember_failure
from .store import FileInfo, RangedReader, Store

log = logging.getLogger(__name__)

#: Assumed network figures for coalescing ranges: time to first byte (ms) and bandwidth
#: per request (MiB/s). Ranges closer than about latency x bandwidth (here 512 KiB) are
#: read as one request, and requests stay under about 4.5 MiB. Larger holes made the
#: benchmark's 2-of-6-column query fetch 930 MB of 995 instead of 249 MB.
NETWORK = (10, 50)

_io_lock = threading.Lock()
_io_threads_set = 0


class ReadGate:
    """The reads pyarrow's IO threads run through Python for one lake.

    They can outlive the scan that asked for them: after a failed query, pre-buffered reads
    are neither cancelled nor awaited. One still running when the interpreter shuts down
    aborts the process (SIGABRT, so Batch sees a crash instead of the task's exit code).
    :meth:`close`, called when the lake closes, refuses new reads and waits until none runs
    and none has started for :data:`QUIET` seconds (reads pyarrow still had queued start,
    and fail, at once).
    """

    QUIET = 0.1
    #: The longest close waits (a read's own timeouts end it long before).
    TIMEOUT = 120.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._started = 0
        self._closed = False

    def enter(self) -> None:
        with self._cond:
            self._started += 1
            if self._closed:
                raise OSError("the task is ending: no more lake reads")
            self._running += 1

    def leave(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def close(self) -> bool:
        """Refuse new reads and wait for running ones; False if some still run after
        :data:`TIMEOUT` seconds."""
        deadline = time.monotonic() + self.TIMEOUT
        with self._cond:
            self._closed = True
            while True:
                started = self._started
                if not self._cond.wait_for(lambda: self._running == 0,
                                           max(0.0, deadline - time.monotonic())):
                    return False
                self._cond.wait(self.QUIET)
                if self._started == started and self._running == 0:
                    return True


class LakeFileSystemHandler(pafs.FileSystemHandler):
    """Read-only ``pyarrow.fs`` access to a lake store; paths are lake keys.

    ``sizes`` are file sizes already known, so opening those costs no request (others are
    looked up in parallel, ``concurrency`` at a time); ``resolve`` maps a key to the key to
    read (the task's own staged writes).
    """

    def __init__(self, store: Store, sizes: Optional[Dict[str, int]] = None,
                 resolve=None, concurrency: int = 16, gate: Optional[ReadGate] = None) -> None:
        self.store = store
        self.gate = gate or ReadGate()
        self.concurrency = concurrency
        self.sizes: Dict[str, int] = dict(sizes or {})
        self.resolve = resolve or (lambda key: key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LakeFileSystemHandler) and other.store is self.store

    def __ne__(self, other: object) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "worker-lake"

    def equals(self, other: Any) -> bool:
        return self == other

    def normalize_path(self, path: str) -> str:
        return path.strip("/")

    # -- metadata ------------------------------------------------------------------------

    def get_file_info(self, paths: List[str]) -> List[pafs.FileInfo]:
        from .parallel import run_parallel

        return run_parallel(lambda path: self._info(path.strip("/")), paths, self.concurrency)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> List[pafs.FileInfo]:
        base = selector.base_dir.strip("/")
        try:
            entries = list(self.store.list(base, selector.recursive))
        except FileNotFoundError:
            if selector.allow_not_found:
                return []
            raise
        return [_arrow_info(e) for e in entries]

    def _info(self, key: str) -> pafs.FileInfo:
        if key in self.sizes:
            return pafs.FileInfo(key, pafs.FileType.File, size=self.sizes[key])
        try:
            found = self.store.info(self.resolve(key))
        except FileNotFoundError:
            return pafs.FileInfo(key, pafs.FileType.NotFound)
        except Exception as e:
            remember_failure(e)
            raise
        return _arrow_info(FileInfo(key, found.size, found.is_dir, found.modified))

    # -- reading -------------------------------------------------------------------------

    def open_input_file(self, path: str):
        key = path.strip("/")
        size, etag = self.sizes.get(key), None
        if size is None:  # pin the version looked up: a file replaced mid-scan fails
            found = self.store.info(self.resolve(key))
            size, etag = found.size, found.etag
        raw = _RangeFile(self.store, self.resolve(key), size, etag)
        raw.gate = self.gate
        return pa.PythonFile(raw, mode="r")

    def open_input_stream(self, path: str):
        return self.open_input_file(path)

    # -- writing: refused (lake writes are staged and committed by ctx.lake) -------------

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError("the lake's Arrow filesystem is read-only; write with ctx.lake")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = _read_only
    open_output_stream = open_append_stream = _read_only


class _RangeFile(RangedReader):
    """Exactly the coalesced ranges Arrow asks for, one ranged read each (no buffering)."""

    gate: ReadGate

    def _fetch(self, offset: int, length: int) -> bytes:
        self.gate.enter()
        try:
            return super()._fetch(offset, length)
        except Exception as e:  # Arrow and DuckDB keep only the text: keep the error
            remember_failure(e)
            raise
        finally:
            self.gate.leave()


def arrow_dataset(lake, keys: List[str], io_threads: int, hive: Optional[bool] = None,
                  sizes: Optional[Dict[str, int]] = None):
    """A ``pyarrow.dataset.Dataset`` over lake parquet ``keys`` read by ranges.

    ``hive`` reads ``key=value`` folders as (string) columns; by default when any path has
    one, like DuckDB's ``hive_partitioning`` auto-detection.
    """
    ensure_io_threads(io_threads)
    handler = LakeFileSystemHandler(lake.store, sizes, lake._readable, lake.concurrency,
                                    lake.arrow_reads())
    filesystem = pafs.PyFileSystem(handler)
    if hive is None:
        hive = any("=" in part for key in keys for part in key.split("/")[:-1])
    options = pads.ParquetFragmentScanOptions(
        pre_buffer=True, cache_options=pa.CacheOptions.from_network_metrics(*NETWORK),
    )
    fmt = pads.ParquetFileFormat(default_fragment_scan_options=options)
    return pads.dataset(
        keys, filesystem=filesystem, format=fmt,
        partitioning=pads.HivePartitioning.discover(infer_dictionary=False) if hive else None,
    )


def ensure_io_threads(count: int) -> None:
    """Grow pyarrow's IO thread pool to ``count`` (it is process-wide; never shrunk here)."""
    global _io_threads_set
    with _io_lock:
        if count > max(_io_threads_set, pa.io_thread_count()):
            pa.set_io_thread_count(count)
            log.debug("pyarrow io threads: %d", count)
        _io_threads_set = max(_io_threads_set, count)


def _arrow_info(entry: FileInfo) -> pafs.FileInfo:
    kind = pafs.FileType.Directory if entry.is_dir else pafs.FileType.File
    size = None if entry.is_dir else entry.size
    mtime = entry.modified
    if mtime is None:
        return pafs.FileInfo(entry.path, kind, size=size)
    return pafs.FileInfo(entry.path, kind, size=size, mtime=mtime)
