"""``python -m worker lake ls|get|put|rm|gc``: the lake of ``WORKER_LAKE_URL`` from a terminal.

Same configuration and credential as a task (managed identity on a node, your Azure login
or the emulators' environment elsewhere), so it answers "what would my task see?". ``put``
goes through the task's commit (staged, then renamed into place: all files or none).
``gc`` cleans the staging area of tasks killed and never rerun (docs/guarantees.md).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import IO

from ..errors import ConfigError, UsageError

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

EXAMPLES = """examples:
  python -m worker lake ls raw/sales -r
  python -m worker lake get raw/sales/2024-01-31.csv ./data/
  python -m worker lake put ./out/ curated/daily/
  python -m worker lake rm curated/tmp -r
  python -m worker lake gc --older-than 7d --dry-run

environment: WORKER_LAKE_URL (the lake root), AZURE_CLIENT_ID or WORKER_CLIENT_ID (the
identity), WORKER_TRANSFER_CONCURRENCY, WORKER_LAKE_CHUNK_SIZE, WORKER_LAKE_FILE_CONCURRENCY,
WORKER_RETRY_TOTAL, WORKER_RETRY_BACKOFF, REQUESTS_CA_BUNDLE, WORKER_LOG_FORMAT,
WORKER_LOG_LEVEL; AZ_BATCH_NODE_ID (on a node: managed identity)"""


_ENVIRONMENT = EXAMPLES.split("\n\n", 1)[1]


def _action(commands, name: str, help_text: str, example: str,
            **options) -> argparse.ArgumentParser:
    """One action, its help with an example and the environment it reads."""
    return commands.add_parser(
        name, help=help_text, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example:\n  python -m worker lake {example}\n\n{_ENVIRONMENT}", **options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``lake`` subcommands."""
    commands = parser.add_subparsers(dest="lake_command", metavar="ACTION")
    commands.required = True
    ls = _action(commands, "ls", "list a folder", "ls raw/sales -r")
    ls.add_argument("path", nargs="?", default="")
    ls.add_argument("-r", "--recursive", action="store_true")
    get = _action(commands, "get", "download a file, a folder or a glob",
                  "get raw/sales/2024-01-31.csv ./data/")
    get.add_argument("remote")
    get.add_argument("local", nargs="?", default=".")
    put = _action(commands, "put", "upload a file or a folder, atomically",
                  "put ./out/ curated/daily/")
    put.add_argument("local")
    put.add_argument("remote")
    put.add_argument("--no-overwrite", action="store_true",
                     help="fail (exit 5) where a file exists with other content")
    rm = _action(commands, "rm", "delete a file, or a folder with -r", "rm curated/tmp -r")
    rm.add_argument("path")
    rm.add_argument("-r", "--recursive", action="store_true")
    gc = _action(
        commands, "gc", "clean staging left by tasks killed and never rerun",
        "gc --older-than 7d --dry-run",
        description="Finish or remove what tasks that have not run for --older-than left in "
                    ".worker-staging/: an interrupted commit is rolled forward, staged files "
                    "are deleted, abandoned claims are released.")
    gc.add_argument("--older-than", default="24h", metavar="AGE",
                    help="only staging untouched for this long: 90s, 30m, 24h, 7d (default 24h)")
    gc.add_argument("--dry-run", action="store_true", help="say what would be cleaned")


def run(args: argparse.Namespace, config, out: IO[str] = sys.stdout) -> int:
    """Run one lake action; errors propagate as WorkerErrors (the CLI gives the exit code)."""
    lake = _open(config)
    try:
        return _ACTIONS[args.lake_command](lake, args, out)
    finally:
        lake.close()


def _open(config):
    from ..lake import Lake, open_store

    if not config.lake_url:
        raise ConfigError("WORKER_LAKE_URL is not set; set it to the lake root, e.g. "
                          "abfss://FS@ACCOUNT.dfs.core.windows.net/PREFIX or file:///DIR")
    store = open_store(config.lake_url, config=config)
    return Lake(store, f"cli/{int(time.time() * 1000)}",
                concurrency=config.transfer_concurrency)


def _ls(lake, args: argparse.Namespace, out: IO[str]) -> int:
    for entry in lake.ls(args.path, recursive=args.recursive):
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.modified or 0))
        name = entry.path + ("/" if entry.is_dir else "")
        out.write(f"{'-' if entry.is_dir else entry.size:>12}  {when}  {name}\n")
    return 0


def _get(lake, args: argparse.Namespace, out: IO[str]) -> int:
    paths = lake.download(args.remote, args.local)
    out.write(f"downloaded {len(paths)} file(s) to {args.local}\n")
    return 0


def _put(lake, args: argparse.Namespace, out: IO[str]) -> int:
    keys = lake.upload(args.local, args.remote, overwrite=not args.no_overwrite)
    outputs = lake.commit()
    size = sum(o["bytes"] for o in outputs)
    out.write(f"committed {len(keys)} file(s), {size} bytes, to {args.remote} in {lake.url}\n")
    return 0


def _rm(lake, args: argparse.Namespace, out: IO[str]) -> int:
    lake.delete(args.path, recursive=args.recursive)
    out.write(f"deleted {args.path}\n")
    return 0


def _gc(lake, args: argparse.Namespace, out: IO[str]) -> int:
    from ..lake import run_parallel
    from ..lake.commit import sweep

    age = parse_age(args.older_than)
    actions = sweep(lake.store, age, lambda fn, items: run_parallel(fn, items, 8, settle=True),
                    dry_run=args.dry_run)
    for line in actions:
        out.write(line + "\n")
    out.write(f"{len(actions)} staging item(s) older than {args.older_than} "
              f"{'found' if args.dry_run else 'cleaned'} in {lake.url}\n")
    return 0


def parse_age(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``24h``, ``7d`` -> seconds."""
    match = _AGE.match(text.strip())
    if not match:
        raise UsageError(f"--older-than {text!r} is not an age; use e.g. 90s, 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


_ACTIONS = {"ls": _ls, "get": _get, "put": _put, "rm": _rm, "gc": _gc}

