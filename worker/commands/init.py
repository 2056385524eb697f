"""``python -m worker init DIR``: a new handler project that runs and tests at once.

Writes the files of ``worker.commands.scaffold`` into DIR (created; it must not hold files
already: init never overwrites), then prints the next commands. A terminal command: a task
never imports it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import IO, List

from ..errors import UsageError

EXAMPLES = """example:
  python -m worker init my-pipeline && cd my-pipeline
  python -m pytest                       # the project's tests, against the emulators
  (then see its README.md: run locally, package, deploy)

environment: init reads no environment variables.

exit codes: 0 written, 2 DIR holds files already, is a file, or cannot be written"""

_APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR",
                        help="the project folder to create (new, or empty)")


def run(args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
    """Write the project; UsageError (exit 2) for a folder that cannot take it."""
    target = Path(args.directory)
    written = init_project(target)
    out.write(_next_steps(target, written))
    return 0


def init_project(target: Path) -> List[str]:
    """Write the scaffold into ``target``; the paths written, relative to it."""
    from .scaffold import files

    _check_target(target)
    name = target.resolve().name
    written = []
    for relative, text in files(name).items():
        path = target / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {str(path)!r} ({e.strerror or e}); choose a "
                             "folder you may write", code="init.write") from None
        written.append(relative)
    return written


def _check_target(target: Path) -> None:
    if target.is_file():
        raise UsageError(f"{str(target)!r} is a file; give init a new or empty folder",
                         code="init.target")
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(f"{str(target)!r} is not empty; init writes into a new or empty "
                         "folder and never overwrites", code="init.target")


def _next_steps(target: Path, written: List[str]) -> str:
    import importlib.util

    name = target.resolve().name
    note = "" if _APP_ID.match(name) else (
        f"\nnote: {name!r} is not a valid Batch application id; package with --name APP_ID\n")
    if not all(importlib.util.find_spec(m) for m in ("pytest", "trustme")):
        note += ("\nnote: this Python environment has no pytest or no emulators (a node's "
                 "holds the runtime only): run the project's commands in the development "
                 "environment, made by bash bootstrap/devenv.sh in the batch-worker checkout\n")
    return (
        f"created {target} ({len(written)} files): a handler (handlers/orders.py), sample "
        "lake data and secrets, tests, README.md\n"
        f"next:\n  cd {target}\n  python -m pytest            # test it against the emulators\n"
        "  cat README.md               # run it locally, package it, deploy it\n" + note
    )
