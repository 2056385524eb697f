"""The job's folder in the lake, read from a laptop (``worker.jobfiles``' paths) with the
public lake API and the caller's own credential, many files at a time."""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence

CONCURRENCY = 16


def read_lake(url: str, paths: Sequence[str], environ: Optional[Mapping[str, str]] = None
              ) -> Dict[str, bytes]:
    """The files among ``paths`` that exist, by path (missing ones left out)."""
    from concurrent.futures import ThreadPoolExecutor

    from ...config import Config
    from ...lake import Lake, open_store

    config = Config.from_env(os.environ if environ is None else environ)
    lake = Lake(open_store(url, config=config), "deploy/read", concurrency=CONCURRENCY)
    found: Dict[str, bytes] = {}

    def one(path: str) -> None:
        try:
            found[path] = lake.read_bytes(path)
        except FileNotFoundError:
            pass

    try:
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="lake-read") as pool:
            list(pool.map(one, paths))
    finally:
        lake.close()
    return found


def list_lake(url: str, folder: str, environ: Optional[Mapping[str, str]] = None
              ) -> List[str]:
    """The files in a lake folder (none when it does not exist)."""
    from ...config import Config
    from ...lake import Lake, open_store

    config = Config.from_env(os.environ if environ is None else environ)
    lake = Lake(open_store(url, config=config), "deploy/read")
    try:
        return [e.path for e in lake.ls(folder) if not e.is_dir]
    except FileNotFoundError:
        return []
    finally:
        lake.close()
