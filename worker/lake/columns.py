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

import os
import struct
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

from ..db import InputDataError
from ..progress import Progress
from . import run_parallel

#: Bytes read from the end of a file in the first request: footers are usually smaller.
TAIL = 64 * 1024
#: Ranges closer than this are fetched as one: a request costs more than moving 512 KiB.
GAP = 512 * 1024
#: The largest single read: big chunks move as several reads in parallel.
PIECE = 8 * 1024 * 1024
_MAGIC = b"PAR1"

Range = Tuple[int, int]  # (start, end), end exclusive


def stage_columns(lake, files: Sequence[Tuple[str, int]], columns: Sequence[str],
                  scratch: Path) -> List[str]:
    """Sparse local copies of ``files`` (lake key, size) holding the footers and the chunks
    of ``columns``; returns their paths, in order."""
    targets = {key: scratch / key for key, _ in files}
    sizes = dict(files)
    for key, size in files:
        targets[key].parent.mkdir(parents=True, exist_ok=True)
        with open(targets[key], "wb") as f:
            f.truncate(size)  # all holes until ranges land
    with Progress(f"footers of {len(files)} file(s)", len(files), 0) as progress:
        run_parallel(lambda k: progress.advance(_fetch_footer(lake, k, sizes[k], targets[k])),
                     list(sizes), lake.concurrency)
    wanted = set(columns)
    reads = [(key, r) for key in sizes
             for r in _split(_coalesce(_ranges(targets[key], key, sizes[key], wanted)), PIECE)]
    total = sum(end - start for _, (start, end) in reads)
    with Progress(f"download {len(columns)} column(s) of {len(files)} file(s)",
                  len(reads), total) as progress:
        run_parallel(lambda item: progress.advance(
            _fetch(lake, item[0], item[1], targets[item[0]])), reads, lake.concurrency)
    return [str(targets[key]) for key, _ in files]


def _fetch(lake, key: str, span: Range, target: Path) -> int:
    start, end = span
    return _write_at(target, start, lake.store.read_bytes(lake._readable(key), start, end - start))


def _write_at(target: Path, offset: int, data: bytes) -> int:
    """Write ``data`` at ``offset``; each write opens the file itself, so a read still in
    flight after another one failed never writes through a descriptor closed under it."""
    fd = os.open(str(target), os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)
    return len(data)


def _fetch_footer(lake, key: str, size: int, target: Path) -> int:
    """Fetch the footer (and its length and magic) into place; the bytes read."""
    if size < 12:
        raise InputDataError(f"bad input data: {key} is not a parquet file ({size} bytes)")
    start = max(0, size - TAIL)
    tail = lake.store.read_bytes(lake._readable(key), start, size - start)
    _write_at(target, start, tail)
    if tail[-4:] != _MAGIC:
        raise InputDataError(f"bad input data: {key} is not a parquet file (no PAR1 footer)")
    footer = struct.unpack("<I", tail[-8:-4])[0] + 8
    if footer > size - 4:
        raise InputDataError(f"bad input data: {key} has a corrupt parquet footer")
    if footer > len(tail):
        _fetch(lake, key, (size - footer, start), target)
    return max(footer, len(tail))


def _ranges(local: Path, key: str, size: int, wanted: set) -> List[Range]:
    """Byte ranges of ``wanted`` columns' chunks, the leading magic, and the index area
    between the last chunk and the footer (page indexes, bloom filters)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(str(local))
    except Exception as e:  # a footer pyarrow cannot parse: bad data, exit 4
        raise InputDataError(f"bad input data: {key}: {e}") from None
    footer_start = size - 8 - meta.serialized_size
    spans: List[Range] = [(0, len(_MAGIC))]
    data_end = len(_MAGIC)
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            start = _chunk_start(chunk)
            end = start + chunk.total_compressed_size
            data_end = max(data_end, end)
            if chunk.path_in_schema.split(".")[0] in wanted:
                spans.append((start, end))
    if data_end < footer_start:
        spans.append((data_end, footer_start))
    return spans


def _chunk_start(chunk) -> int:
    """Where a column chunk's first page starts (its dictionary page, if any)."""
    offsets = [chunk.data_page_offset]
    if chunk.has_dictionary_page and chunk.dictionary_page_offset:
        offsets.append(chunk.dictionary_page_offset)
    return min(o for o in offsets if o is not None)


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
