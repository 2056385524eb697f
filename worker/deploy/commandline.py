"""Batch command lines that start the package's launcher and start task.

Batch runs a command line without a shell, so each one is ``/bin/bash -c 'SCRIPT' NAME
ARG...``: the script finds the package folder, the arguments follow as separate, quoted
words and reach ``python -m worker`` unchanged (spaces, quotes, ``$``, backslashes, non-ASCII
and newlines included), whether Batch splits the line like a POSIX shell or runs it under one.

The package folder is in ``AZ_BATCH_APP_PACKAGE_<app>_<version>``, with ``.``, ``-`` and ``#``
flattened to ``_``; Batch's documentation and users' reports disagree on its case, and a
package referenced without a version (the application's default) has no version suffix. The
script compares names case-insensitively, prefers the versioned variable and falls back to the
default-version one, and exits 21 when neither is set.
"""

from __future__ import annotations

import re
import shlex
from typing import Optional, Sequence

from .errors import PackageUsageError

#: The script's exit code when the node has no variable for the package.
EXIT_NO_PACKAGE = 21
#: task.sh's exit code when the start task could not provision the environment (its
#: ``EXIT_PROVISION``; its other own code, 2, is the harness's configuration error).
EXIT_PROVISION = 20
#: What a task's exit code means when the launcher ended it, not the harness: the table of
#: docs/reference/exit-codes.md "The task launcher" (``status`` explains failures with it).
LAUNCHER_MEANINGS = {
    EXIT_PROVISION: "the launcher's: the start task could not provision the package's "
                    "environment",
    EXIT_NO_PACKAGE: "the launcher's: no AZ_BATCH_APP_PACKAGE_* variable for the package on "
                     "the node: its pool does not reference that version, or the node started "
                     "before the pool did",
}
PREFIX = "AZ_BATCH_APP_PACKAGE_"

_APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

_SCRIPT = (
    'want={want}; fallback={fallback}; dir=; shopt -s nocasematch; '
    'for name in "${{!{prefix}@}}"; do '
    'if [[ -z ${{!name}} ]]; then continue; fi; '
    'if [[ $name == "$want" ]]; then dir=${{!name}}; break; fi; '
    'if [[ $name == "$fallback" ]]; then dir=${{!name}}; fi; '
    'done; shopt -u nocasematch; '
    'if [[ -z $dir ]]; then '
    'echo "$0: no $want or $fallback variable on this node: the {what} needs application '
    'package {app}{version_text} referenced by its pool or task" >&2; exit {code}; fi; '
    'exec bash "$dir/{script}" "$@"'
)


def package_variable(app_id: str, version: Optional[str] = None) -> str:
    """The variable Batch sets to the package folder, in the application id's own case:
    ``AZ_BATCH_APP_PACKAGE_<app>_<version>``, or without ``_<version>`` for the default."""
    _check(app_id, version)
    name = PREFIX + app_id + ("_" + version if version else "")
    return re.sub(r"[.#-]", "_", name)


def task_command_line(app_id: str, version: Optional[str], worker_args: Sequence[str]) -> str:
    """The command line of a task that runs ``python -m worker WORKER_ARGS...`` through the
    package's launcher (``task.sh``), e.g. ``["run", "handlers.sales:daily", "--param",
    "date=2024-01-31"]``. ``version=None`` means the application's default version."""
    return _command_line(app_id, version, "task.sh", "worker-task", worker_args)


def start_task_command_line(app_id: str, version: Optional[str],
                            args: Sequence[str] = ()) -> str:
    """The pool's start task command line: ``bash <package>/starttask.sh ARGS...``."""
    return _command_line(app_id, version, "starttask.sh", "worker-starttask", args)


def _command_line(app_id: str, version: Optional[str], script: str, name: str,
                  args: Sequence[str]) -> str:
    _check(app_id, version)
    body = _SCRIPT.format(
        want=package_variable(app_id, version), fallback=package_variable(app_id),
        prefix=PREFIX, what="task" if script == "task.sh" else "start task", app=app_id,
        version_text=" version %s" % version if version else "", code=EXIT_NO_PACKAGE,
        script=script)
    return " ".join(["/bin/bash", "-c", shlex.quote(body), name, *map(shlex.quote, args)])


def task_exit_meaning(exit_code: int) -> str:
    """The meaning of a Batch task's exit code: the launcher's own (20, 21), else the
    harness's (``worker.errors.exit_meaning``)."""
    from ..errors import exit_meaning

    return LAUNCHER_MEANINGS.get(exit_code) or exit_meaning(exit_code)


def _check(app_id: str, version: Optional[str]) -> None:
    if not _APP_ID.match(app_id):
        raise PackageUsageError("application id %r is not one Batch takes: up to 64 "
                                "letters, digits, '-' and '_'" % app_id)
    if version is not None and not _VERSION.match(version):
        raise PackageUsageError("application package version %r is not one Batch takes: "
                                "up to 64 letters, digits, '-', '_' and '.'" % version)
