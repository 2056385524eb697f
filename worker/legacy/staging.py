"""A legacy program's inputs: lake files staged to local disk, many at once.

Inputs keep their lake path below the local folder (``<dest>/videos/in/a.mp4``), so files
from several globs never collide and a local path tells which lake file it is. (Outputs go
up through ``Lake.upload``, so they join the task's atomic commit: ``Context.stage_out`` and
``worker.legacy.task``.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

from ..errors import InputNotFound
from ..lake import Lake
from ..lake.paths import has_magic, split_glob, to_key

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
            raise InputNotFound(f"no files match {pattern!r} in the lake {lake.url}")
        for path in local:
            found[Path(path).relative_to(dest).as_posix()] = Path(path)
    return sorted(found.items())


def _patterns(paths: Union[PathLike, Sequence[PathLike]]) -> Iterable[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]
