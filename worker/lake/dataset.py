"""Lake datasets: a file, a folder or a glob of parquet/CSV/JSON files read as one table.

A :class:`Dataset` is only a description until something reads it. ``ctx.sql`` reads it in
one of three ways (:attr:`Dataset.mode`):

- ``"local"``: a ``file://`` lake; DuckDB reads the files in place.
- ``"stage"`` (the default on the Data Lake): every file is downloaded to the task's
  scratch in parallel, then DuckDB reads the local copies with its own readers (and any
  reader options such as ``union_by_name`` or CSV dialects).
- ``"stream"`` (``stage=False``; parquet only): DuckDB scans a ``pyarrow.dataset`` whose
  reads are ranged GETs (``worker.lake.arrowfs``): only the footers and the column chunks
  the query needs cross the network, with DuckDB's projection and filter pushdown (a
  filter on a hive column skips whole files), and nothing is written to local disk. Work
  larger than memory still spills: DuckDB pulls record batches and spills its own state.

Staging is the default because it measures faster (``bench/bench_duckdb.py``,
``bench/RESULTS.md``). Under a node's network (2000 Mbit/s, 10 ms per request, Python 3.8), a
query reading 2 of 6 columns of 1 GB in 50 files: staged with the query's ``columns=`` 2.8 s,
whole files 5.7 s, streamed 5.7 s; of 5 GB in 250 files: 10.8 s, 26.3 s and 21.8 s. So
for data several times memory, name the query's ``columns=`` or stream: staging whole files
also writes them all to local disk (a Standard_D2a_v4's temporary disk is rated at 23 MB/s
of writes once the page cache's dirty share of its 8 GiB fills). Arrow reads one range of a
file at a time, a few files at once, so a streamed scan waits on latency: it keeps twice
``WORKER_TRANSFER_CONCURRENCY`` reads in flight. Earlier, on loopback, a 5-of-6-column
rollup streamed peaked at 2.3 GB of memory (Arrow's read-ahead buffers are outside DuckDB's
``memory_limit``) against 1.2 GB staged. Stream when a query reads a small part of
the data: a few columns of a wide table, or a filter on hive folders over many files.

Hive folders (``date=2024-01-31/``) become columns in every mode; streamed, they are
strings (DuckDB's reader infers types: cast in SQL when it matters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


class Dataset:
    """Files in the lake that read as one table; build it with ``ctx.lake.dataset(path)``.

    ``format`` is ``"parquet"``, ``"csv"`` or ``"json"`` (default: from the file names).
    ``columns`` names the only columns queries may use: on the Data Lake only their
    column chunks are then staged (parquet; see ``worker.lake.columns``), and in every mode
    ``ctx.sql`` sees just those columns (plus hive partition columns named in the list).
    On the Data Lake the files are downloaded to scratch before DuckDB reads them;
    ``stage=False`` reads only the ranges a query needs instead (parquet without reader
    options other than ``hive_partitioning``; see the module docstring). Other keyword
    options go to DuckDB's ``read_parquet``/``read_csv``/``read_json`` as they are, e.g.
    ``hive_partitioning=True``, ``union_by_name=True``, ``delim=";"``.
    """

    def __init__(self, lake, path: str, format: Optional[str] = None,
                 stage: Optional[bool] = None, columns: Optional[Sequence[str]] = None,
                 **options: Any) -> None:
        if format is not None and format not in ("parquet", "csv", "json"):
            raise ValueError(f"dataset format {format!r} is not one of parquet, csv, json")
        if isinstance(columns, str) or (columns is not None and not all(
                isinstance(c, str) and c for c in columns)):
            raise ValueError(f"dataset columns must be a list of column names, got {columns!r}")
        self.lake = lake
        self.path = path
        self.stage = stage
        self.columns: Optional[List[str]] = list(columns) if columns is not None else None
        self.options: Dict[str, Any] = dict(options)
        self._format = format
        self._infos: Optional[List[Any]] = None  # the files' FileInfo, listed once
        self._local: Optional[List[str]] = None
        self._arrow: Any = None

    def __repr__(self) -> str:
        return f"Dataset({self.path!r}, format={self.format!r})"

    @property
    def mode(self) -> str:
        """How ``ctx.sql`` reads it: ``"local"``, ``"stream"`` or ``"stage"``."""
        if self._in_place() is not None:
            return "local"
        if self.stage is not False:
            return "stage"
        if self.format != "parquet" or not set(self.options) <= {"hive_partitioning"}:
            raise ValueError(
                f"dataset {self.path!r} cannot be streamed (stage=False): only parquet "
                f"without DuckDB reader options other than hive_partitioning can"
            )
        return "stream"

    @property
    def files(self) -> List[str]:
        """The lake paths of the dataset's files (listed once)."""
        return [e.path for e in self._file_infos()]

    def _file_infos(self) -> List[Any]:
        if self._infos is None:
            self._infos = self.lake.file_infos(self.path)
        return self._infos

    @property
    def format(self) -> str:
        """``parquet``, ``csv`` or ``json``: as given, else from the files' suffixes."""
        if self._format is None:
            self._format = _format_of(self.files, self.path)
        return self._format

    def local_files(self, scratch: Path) -> List[str]:
        """Paths on this machine's disk: in place for a local lake, else staged (once).

        Staged files keep their lake paths below ``scratch``, so hive folders such as
        ``date=2024-01-31/`` still name partition columns.
        """
        if self._local is None:
            self._local = self._in_place() or self._stage(Path(scratch))
        return self._local

    def arrow_dataset(self):
        """A ``pyarrow.dataset.Dataset`` over the files that reads byte ranges on demand
        (made once; parquet only)."""
        if self._arrow is None:
            from .arrowfs import arrow_dataset

            hive = self.options.get("hive_partitioning")
            # Arrow reads a file's ranges one after another, so a streamed scan waits on
            # latency more than staging does: twice the reads in flight (1 GB under 10 ms
            # per request, Python 3.8: 6.2 s with 16 against 7.9 s with 8, the same CPU).
            self._arrow = arrow_dataset(self.lake, self.files, 2 * self.lake.concurrency,
                                        hive=None if hive is None else bool(hive))
        return self._arrow

    def to_table(self, columns: Optional[List[str]] = None):
        """The whole dataset as one ``pyarrow.Table`` (parquet only; it must fit in memory)."""
        return self.lake.read_table(self.path, columns=columns)

    def _in_place(self) -> Optional[List[str]]:
        in_place = [self.lake.store.local_path(self.lake._readable(k)) for k in self.files]
        return [str(p) for p in in_place] if all(in_place) else None

    def _stage(self, scratch: Path) -> List[str]:
        if self.columns and self.format == "parquet":
            from .columns import stage_columns

            return stage_columns(self.lake, self._file_infos(), self.columns, scratch)
        pairs: List[Tuple[str, Path]] = [(key, scratch / key) for key in self.files]
        self.lake._transfer("download", pairs, self.lake._download_one)
        return [str(target) for _, target in pairs]



def _format_of(files: List[str], path: str) -> str:
    found = {_FORMATS.get(_suffix(name)) for name in files}
    if len(found) == 1 and None not in found:
        return found.pop()  # type: ignore[return-value]
    raise ValueError(
        f"cannot tell the format of the dataset {path!r} from its file names "
        f"(e.g. {files[0]!r}); pass format='parquet', 'csv' or 'json'"
    )


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    for compressed in (".gz", ".zst"):
        if base.endswith(compressed):
            base = base[: -len(compressed)]
    dot = base.rfind(".")
    return base[dot:] if dot >= 0 else ""
