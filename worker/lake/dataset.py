"""Lake datasets: a file, a folder or a glob of parquet/CSV/JSON files read as one table.

A :class:`Dataset` is only a description until something reads it: ``ctx.sql`` stages its
files to the node's local disk in parallel (or reads them in place on a ``file://`` lake) and
lets DuckDB scan them there, so data larger than memory spills instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

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
    Other keyword options go to DuckDB's ``read_parquet``/``read_csv``/``read_json`` as
    they are, e.g. ``hive_partitioning=True``, ``union_by_name=True``, ``delim=";"``.
    """

    def __init__(self, lake, path: str, format: Optional[str] = None, **options: Any) -> None:
        if format is not None and format not in ("parquet", "csv", "json"):
            raise ValueError(f"dataset format {format!r} is not one of parquet, csv, json")
        self.lake = lake
        self.path = path
        self.options: Dict[str, Any] = dict(options)
        self._format = format
        self._files: Optional[List[str]] = None
        self._local: Optional[List[str]] = None

    def __repr__(self) -> str:
        return f"Dataset({self.path!r}, format={self.format!r})"

    @property
    def files(self) -> List[str]:
        """The lake paths of the dataset's files (listed once)."""
        if self._files is None:
            self._files = self.lake.files(self.path)
        return self._files

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
            in_place = [self.lake.store.local_path(self.lake._readable(k)) for k in self.files]
            if all(in_place):
                self._local = [str(p) for p in in_place]
            else:
                self._local = self._stage(Path(scratch))
        return self._local

    def to_table(self, columns: Optional[List[str]] = None):
        """The whole dataset as one ``pyarrow.Table`` (parquet only; it must fit in memory)."""
        return self.lake.read_table(self.path, columns=columns)

    def _stage(self, scratch: Path) -> List[str]:
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
