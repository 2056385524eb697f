"""A handler's traceback, trimmed to the handler's own code.

Only a bug in the handler (exit 1) logs a traceback. What helps is the handler's frames and
the place the error was raised: the harness's frames above the handler, and the frames of
the libraries it called (the worker's, the Azure SDK's, the standard library's) between its
last frame and the innermost one, are left out and counted.
"""

from __future__ import annotations

import functools
import os
import site
import sysconfig
import traceback
from types import TracebackType
from typing import List, Optional, Tuple

_WORKER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@functools.lru_cache(maxsize=None)
def _library_dirs() -> Tuple[str, ...]:
    paths = {sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib",
                                                        "platlib")}
    paths.update(getattr(site, "getsitepackages", lambda: [])())
    paths.add(os.path.dirname(os.__file__))
    return tuple(os.path.abspath(p) + os.sep for p in paths if p) + (_WORKER_DIR,)


def is_handler_frame(filename: str) -> bool:
    """True for code of the user's (not the worker's, a library's or the stdlib's)."""
    path = os.path.abspath(filename)
    return not path.startswith(_library_dirs()) and not filename.startswith("<frozen")


def in_handler_code(error: BaseException) -> bool:
    """True when a frame of the handler's own code is on the error's traceback."""
    return any(is_handler_frame(tb.tb_frame.f_code.co_filename)
               for tb in _frames(error.__traceback__))


def handler_traceback(error: BaseException) -> str:
    """The traceback of ``error`` with the handler's frames and the innermost one."""
    frames = _frames(error.__traceback__)
    kept = [tb for tb in frames if is_handler_frame(tb.tb_frame.f_code.co_filename)]
    if frames and (not kept or kept[-1] is not frames[-1]):
        kept.append(frames[-1])  # where it was raised, even inside a library
    lines = ["Traceback (most recent call last):\n"]
    for tb in kept:
        lines.extend(traceback.format_list(traceback.extract_tb(tb, limit=1)))
    omitted = len(frames) - len(kept)
    if omitted:
        lines.append(f"  ({omitted} frame(s) of the worker and libraries left out)\n")
    lines.extend(traceback.format_exception_only(type(error), error))
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None:
        lines.append("caused by: " + "".join(
            traceback.format_exception_only(type(cause), cause)).strip() + "\n")
    return "".join(lines)


def _frames(tb: Optional[TracebackType]) -> List[TracebackType]:
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    return frames


