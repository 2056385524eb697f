"""The projects ``python -m worker init DIR --template NAME`` writes: one folder per template
under ``templates/``, each a handler project that runs and tests at once (handlers, sample
lake data, tests against the emulators, requirements, ignore files, ``batch.toml`` and a
README of the next commands).

Files are copied as they are, but for ``{{name}}`` in text files, which becomes the project's
folder name, and two names that packaging tools would drop: ``gitignore`` and
``workerignore`` are written as ``.gitignore`` and ``.workerignore``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, NamedTuple

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT = "orders"
_RENAMED = {"gitignore": ".gitignore", "workerignore": ".workerignore"}
_SKIPPED = ("__pycache__", ".pytest_cache", ".ruff_cache")


class Template(NamedTuple):
    """A template: its name, what it makes (one line) and the command to try first."""

    name: str
    summary: str
    first_run: str


TEMPLATES: Dict[str, Template] = {t.name: t for t in (
    Template("orders", "one handler: a day of orders summed per region with DuckDB, signed "
             "with a Key Vault secret, written to the lake",
             "python -m worker run handlers.orders:summarize --param date=2024-01-31"),
    Template("fanout", "a fan-out and a merge: one task per day folder the lake lists "
             "(raw/orders/date=*/), then one task that totals the days that succeeded",
             "python -m worker run handlers.pipeline:partition "
             "--param path=raw/orders/date=2024-01-31/"),
    Template("legacy", "a legacy program (iconv) over lake files with `exec`, one task per "
             "file, and the same from a Python handler (ctx.stage_in, ctx.run, ctx.stage_out)",
             "python -m worker exec --input 'raw/exports/*.csv' --output curated/exports/ "
             "-- iconv -f LATIN1 -t UTF-8 -o {output_dir}/{name} {input}"),
)}


def names() -> List[str]:
    return list(TEMPLATES)


def files(template: str, name: str) -> Dict[str, bytes]:
    """Path (relative to the project folder) -> content, for a project named ``name``."""
    root = TEMPLATES_DIR / template
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(part in _SKIPPED or part.endswith(".pyc")
                                     for part in rel.parts):
            continue
        target = "/".join(rel.parts[:-1] + (_RENAMED.get(rel.name, rel.name),))
        found[target] = _filled(path.read_bytes(), name)
    return found


def _filled(data: bytes, name: str) -> bytes:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # sample data in another encoding: as it is
    return text.replace("{{name}}", name).encode("utf-8") if "{{name}}" in text else data
