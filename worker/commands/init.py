"""``python -m worker init DIR [--template NAME]``: a new handler project that runs and tests
at once; ``init --list``: the templates.

Writes the files of a template (``worker.commands.scaffold``) into DIR (created; it must not
hold files already: init never overwrites), then prints the next commands. A terminal
command: a task never imports it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import IO, List

from ..errors import UsageError

EXAMPLES = """examples:
  python -m worker init --list                              # the templates
  python -m worker init my-pipeline && cd my-pipeline       # the default: orders
  python -m worker init my-fanout --template fanout         # one task per day, then a merge
  python -m worker init my-converter --template legacy      # a legacy program with exec
  python -m pytest                       # in the project: its tests, against the emulators
  (then see its README.md: run locally, package, deploy)

environment: init reads no environment variables.

exit codes: 0 written, 2 DIR holds files already, is a file, or cannot be written, or an
  unknown template"""

_APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .scaffold import DEFAULT, names

    parser.add_argument("directory", metavar="DIR", nargs="?",
                        help="the project folder to create (new, or empty)")
    parser.add_argument("--template", "-t", metavar="NAME", default=DEFAULT,
                        help="what the project starts from: %s (default %s; --list says "
                             "what each holds)" % (", ".join(names()), DEFAULT))
    parser.add_argument("--list", action="store_true", help="list the templates and exit")


def run(args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
    """Write the project; UsageError (exit 2) for a folder or template that cannot be used."""
    if args.list:
        out.write(template_list())
        return 0
    if not args.directory:
        raise UsageError("init needs the project's folder: python -m worker init DIR "
                         "[--template NAME] (or --list)", code="init.target")
    target = Path(args.directory)
    written = init_project(target, args.template)
    out.write(_next_steps(target, args.template, written))
    return 0


def template_list() -> str:
    """What ``init --list`` prints: each template, what it makes and its first command."""
    from .scaffold import DEFAULT, TEMPLATES

    lines = []
    for template in TEMPLATES.values():
        default = " (the default)" if template.name == DEFAULT else ""
        lines.append("%s%s\n    %s\n    first run: %s\n" % (
            template.name, default, template.summary, template.first_run))
    return "\n".join(lines)


def init_project(target: Path, template: str = "orders") -> List[str]:
    """Write the template into ``target``; the paths written, relative to it."""
    from .scaffold import TEMPLATES, files

    if template not in TEMPLATES:
        raise UsageError(f"unknown template {template!r}; the templates are "
                         f"{', '.join(TEMPLATES)} (python -m worker init --list)",
                         code="init.template")
    _check_target(target)
    written = []
    for relative, data in files(template, target.resolve().name).items():
        path = target / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
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


def _next_steps(target: Path, template: str, written: List[str]) -> str:
    import importlib.util

    from .scaffold import TEMPLATES

    name = target.resolve().name
    note = "" if _APP_ID.match(name) else (
        f"\nnote: {name!r} is not a valid Batch application id; package with --name APP_ID\n")
    if not all(importlib.util.find_spec(m) for m in ("pytest", "trustme")):
        note += ("\nnote: this Python environment has no pytest or no emulators (a node's "
                 "holds the runtime only): run the project's commands in the development "
                 "environment, made by bash bootstrap/devenv.sh in the batch-worker checkout\n")
    return (
        f"created {target} ({len(written)} files) from the template {template}: "
        f"{TEMPLATES[template].summary}\n"
        f"next:\n  cd {target}\n  python -m pytest            # test it against the emulators\n"
        "  cat README.md               # run it locally, package it, deploy it\n" + note
    )
