"""Environment files (dotenv): ``KEY=VALUE`` lines that ``set -a; . FILE`` and dotenv loaders
read alike.

A value made only of characters the shell leaves alone is written as it is; any other (a
storage connection string holds ``;``) is single-quoted, the shell's way, which python-dotenv,
VS Code and systemd read the same. :func:`parse` reads what :func:`format_environment`
writes, and plain files too.
"""

from __future__ import annotations

import re
from typing import Dict, Mapping

_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")


def _quote(value: str) -> str:
    return value if _PLAIN.match(value) else "'" + value.replace("'", "'\\''") + "'"


def format_environment(env: Mapping[str, str]) -> str:
    """``KEY=VALUE`` lines, values quoted where the shell needs it."""
    return "".join("%s=%s\n" % (k, _quote(v)) for k, v in env.items())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("'\\''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse(text: str) -> Dict[str, str]:
    """The variables of an environment file; blank lines and ``#`` comments skipped."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = _unquote(value.strip())
    return env
