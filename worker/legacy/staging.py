"""A legacy program's files: inputs from the lake to local disk, outputs back.

Inputs keep their lake path below the local folder (``<dest>/videos/in/a.mp4``), so files
from several globs never collide and a local path tells which lake file it is. Outputs go
up through ``Lake.upload``, so they join the task's atomic commit, each recorded with the
input it came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from ..errors import InputNotFound
from ..lake import Lake, run_parallel
from ..lake.paths import has_magic, split_glob, to_key
from ..progress import Progress

PathLike = Union[str, "os.PathLike[str]"]


def stage_in(lake: Lake, paths: Union[PathLike, Sequence[PathLike]], dest: Path
             ) -> List[Tuple[str, Path]]:
    """Download the files that lake globs, files or folders name (each pattern must match
    something: InputNotFound, exit 4, otherwise) to ``dest/<lake path>``, in parallel with
    progress; return ``(lake path, local path)`` pairs sorted by lake path."""
    found = {}
    for pattern in _patterns(paths):
        base = split_glob(pattern)[0] if has_magic(pattern) else to_key(pattern)
        local = lake.download(pattern, str(dest / base) if base else str(dest))
        if not local:
            raise InputNotFound(f"no files match {pattern!r} in the lake {lake.url}; check "
                                "the pattern (python -m worker lake ls lists what is there)")
        for path in local:
            found[Path(path).relative_to(dest).as_posix()] = Path(path)
    return sorted(found.items())


def stage_out_files(lake: Lake, items: Sequence[Tuple[Path, str, Optional[str]]],
                    overwrite: bool = True) -> List[str]:
    """Stage ``(local file, lake path, source)`` items for the commit, in parallel (one
    upload per file through ``Lake.upload``), with progress; returns the lake paths."""
    total = sum(local.stat().st_size for local, _, _ in items)

    with Progress(f"upload {len(items)} output file(s)", len(items), total) as progress:
        def one(item: Tuple[Path, str, Optional[str]]) -> None:
            local, key, source = item
            lake.upload(str(local), key, overwrite=overwrite, source=source)
            progress.advance(local.stat().st_size)

        run_parallel(one, items, lake.concurrency)
    return [key for _, key, _ in items]


def _patterns(paths: Union[PathLike, Sequence[PathLike]]) -> Iterable[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]
