"""Lake paths: normalised keys relative to the lake root, and ``**`` globbing."""

from __future__ import annotations

import posixpath
import re
from typing import Pattern, Tuple

_MAGIC = re.compile(r"[*?\[]")


def to_key(path: str) -> str:
    """Normalise a handler's path to a key under the root; refuse escapes.

    ``""`` is the root itself. Leading slashes are allowed and mean the root, as in
    ``ctx.lake.ls("/")``; a ``..`` that climbs out of the root is refused.
    """
    if not isinstance(path, str):
        raise TypeError(f"lake paths are strings, not {type(path).__name__}")
    key = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    if ".." in path.replace("\\", "/").split("/") and _climbs_out(path):
        raise ValueError(
            f"lake path {path!r} escapes the lake root; use a path relative to the root"
        )
    return "" if key == "." else key


def _climbs_out(path: str) -> bool:
    depth = 0
    for part in path.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def has_magic(pattern: str) -> bool:
    """True when ``pattern`` holds glob characters."""
    return bool(_MAGIC.search(pattern))


def split_glob(pattern: str) -> Tuple[str, str]:
    """``("raw/sales", "**/*.parquet")``: the literal folder to list, and the rest."""
    parts = to_key(pattern).split("/")
    for i, part in enumerate(parts):
        if has_magic(part):
            return "/".join(parts[:i]), "/".join(parts[i:])
    return "/".join(parts[:-1]), parts[-1]


def glob_regex(pattern: str) -> Pattern[str]:
    """Compile a glob over keys: ``*`` and ``?`` stay in one segment, ``**`` spans any."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")
