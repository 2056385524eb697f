"""Staging only the parquet column chunks a query reads, into sparse local copies.

A parquet file says in its footer where each column chunk of each row group lies. Given
the columns a handler names (``ctx.lake.dataset(path, columns=[...])``), the stager reads
each file's footer with one ranged read, then only the chunks of those columns (plus the
file's first bytes and the index area before the footer), all files and ranges in
parallel on the lake's thread pool, and writes each range at its own offset into a local
file of the remote file's size. Whatever was not fetched stays a hole (sparse: it takes
no disk). DuckDB reads the local copy as an ordinary parquet file and, for a query over
those columns, touches only bytes that were fetched; ``ctx.sql`` exposes only the named
columns, so a query naming another one fails with DuckDB's "column not found" instead of
reading a hole.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import InputDataError, first_line
from ..progress import Progress
from ..sqltext import sql_literal
from .parallel import run_parallel
from .store import FileInfo, write_at

#: Bytes read from the end of a file in the first request: footers are usually smaller.
TAIL = 64 * 1024
#: Ranges closer than this are fetched as one: a request costs more than moving 512 KiB.
GAP = 512 * 1024
#: The largest single read: big chunks move as several reads in parallel.
PIECE = 8 * 1024 * 1024
_MAGIC = b"PAR1"

Range = Tuple[int, int]  # (start, end), end exclusive
Chunk = Tuple[str, int, int]  # (top-level column, start, end) of a column chunk


def stage_columns(lake, files: Sequence[FileInfo], columns: Sequence[str],
                  scratch: Path) -> List[str]:
    """Sparse local copies of ``files`` holding the footers and the chunks of ``columns``;
    returns their paths, in order. Every read is pinned to the version listed, so a file
    replaced meanwhile fails the task (retryable) instead of mixing two versions."""
    targets = {f.path: scratch / f.path for f in files}
    sizes = {f.path: f.size for f in files}
    etags = {f.path: f.etag for f in files}
    for key, size in sizes.items():
        targets[key].parent.mkdir(parents=True, exist_ok=True)
        with open(targets[key], "wb") as f:
            f.truncate(size)  # all holes until ranges land
    with Progress(f"footers of {len(files)} file(s)", len(files), 0) as progress:
        run_parallel(lambda k: progress.advance(
            _fetch_footer(lake, k, sizes[k], etags[k], targets[k])), list(sizes), lake.concurrency)
    wanted = set(columns)
    chunks = _chunks({key: targets[key] for key in sizes})
    reads = [(key, r) for key in sizes for r in _split(
        _coalesce(_ranges(targets[key], sizes[key], chunks[key], wanted)), PIECE)]
    total = sum(end - start for _, (start, end) in reads)
    with Progress(f"download {len(columns)} column(s) of {len(files)} file(s)",
                  len(reads), total) as progress:
        run_parallel(lambda item: progress.advance(
            _fetch(lake, item[0], item[1], etags[item[0]], targets[item[0]])),
            reads, lake.concurrency)
    return [str(targets[f.path]) for f in files]


def _fetch(lake, key: str, span: Range, etag: Optional[str], target: Path) -> int:
    start, end = span
    data = lake.store.read_bytes(lake._readable(key), start, end - start, etag=etag)
    return write_at(target, start, data)


def _fetch_footer(lake, key: str, size: int, etag: Optional[str], target: Path) -> int:
    """Fetch the footer (and its length and magic) into place; the bytes read."""
    if size < 12:
        raise InputDataError(f"bad input data: {key} is not a parquet file ({size} bytes)")
    start = max(0, size - TAIL)
    tail = lake.store.read_bytes(lake._readable(key), start, size - start, etag=etag)
    write_at(target, start, tail)
    if tail[-4:] != _MAGIC:
        raise InputDataError(f"bad input data: {key} is not a parquet file (no PAR1 footer)")
    footer = struct.unpack("<I", tail[-8:-4])[0] + 8
    if footer > size - 4:
        raise InputDataError(f"bad input data: {key} has a corrupt parquet footer")
    if footer > len(tail):
        _fetch(lake, key, (size - footer, start), etag, target)
    return max(footer, len(tail))


def _ranges(local: Path, size: int, chunks: List[Chunk], wanted: set) -> List[Range]:
    """Byte ranges of ``wanted`` columns' chunks, the leading magic, and the index area
    between the last chunk and the footer (page indexes, bloom filters)."""
    with open(local, "rb") as f:
        f.seek(size - 8)
        footer_start = size - 8 - struct.unpack("<I", f.read(4))[0]
    spans: List[Range] = [(0, len(_MAGIC))]
    data_end = len(_MAGIC)
    for column, start, end in chunks:
        data_end = max(data_end, end)
        if column in wanted:
            spans.append((start, end))
    if data_end < footer_start:
        spans.append((data_end, footer_start))
    return spans


def _chunks(locals_by_key: Dict[str, Path]) -> Dict[str, List[Chunk]]:
    """(top-level column, start, end) of each column chunk of each file, from the footers.

    Read by DuckDB, which runs the query anyway (importing pyarrow for this would add a
    third of a second to every task), on one connection (each new one costs ~20 ms). A
    chunk starts at its dictionary page, if it has one.
    """
    import duckdb

    conn = duckdb.connect()
    try:
        return {key: _chunks_of(conn, key, local) for key, local in locals_by_key.items()}
    finally:
        conn.close()


def _chunks_of(conn, key: str, local: Path) -> List[Chunk]:
    import duckdb

    try:
        rows = conn.execute(
            "select path_in_schema, data_page_offset, dictionary_page_offset, "
            f"total_compressed_size from parquet_metadata({sql_literal(str(local))})").fetchall()
    except duckdb.Error as e:  # a footer DuckDB cannot parse: bad data, exit 4
        raise InputDataError(f"bad input data: {key}: {first_line(e)}") from None
    chunks = []
    for path, data_page, dictionary_page, compressed in rows:
        start = min(data_page, dictionary_page) if dictionary_page else data_page
        chunks.append((path.split(", ")[0], start, start + compressed))
    return chunks


def _coalesce(spans: Iterable[Range]) -> List[Range]:
    merged: List[Range] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= GAP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _split(spans: Iterable[Range], piece: int) -> List[Range]:
    """Ranges cut into reads of at most ``piece`` bytes, so big chunks move in parallel."""
    return [(s, min(s + piece, end)) for start, end in spans for s in range(start, end, piece)]
