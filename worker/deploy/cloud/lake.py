"""The job's folder in the lake, read from a laptop (``worker.jobfiles``' paths) with the
public lake API and the caller's own credential, many files at a time.

Which lake: the one the job's tasks wrote to, the job's own ``WORKER_LAKE_URL`` (its
``commonEnvironmentSettings``, which deploy sets from ``[job] lake_url``); for a job without
one, ``WORKER_LAKE_URL`` here, else the spec's ``[job] lake_url``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

CONCURRENCY = 16
VARIABLE = "WORKER_LAKE_URL"


def job_lake_url(settings: Optional[Iterable[Any]], spec: Any = None,
                 environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The lake of a job whose ``commonEnvironmentSettings`` are ``settings`` (the SDK's
    ``EnvironmentSetting`` models; None when unknown), else of the environment, else of
    ``spec`` (or None)."""
    for setting in settings or ():
        if setting.name == VARIABLE and (setting.value or "").strip():
            return setting.value.strip()
    env = os.environ if environ is None else environ
    found = env.get(VARIABLE, "").strip() or (
        str(spec.get("job", "lake_url") or "").strip() if spec is not None else "")
    return found or None


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
