"""A bounded thread pool for the lake's transfers: its own module, so that the stores
(``azure.py``, ``columns.py``, ``arrow.py``, ``arrowfs.py``) and the facade use it without
importing each other in a circle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, List


def run_parallel(fn: Callable[[Any], Any], items: Iterable[Any], concurrency: int,
                 settle: bool = False) -> List[Any]:
    """Run ``fn`` over ``items`` on a bounded thread pool; the first error cancels the rest.

    With ``settle``, the error is raised only once the calls already running have ended,
    so the caller knows everything that happened (the commit undoes exactly what it did).
    """
    items = list(items)
    if len(items) <= 1 or concurrency <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(items)))
    futures = [pool.submit(fn, item) for item in items]
    try:
        done, _ = wait(futures, return_when="FIRST_EXCEPTION")
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=settle)
