"""``python -m worker package PROJECT_DIR --out app.zip``: build the application package.

Progress goes to stderr, the summary of what was built to stdout; a failure is one line on
stderr (``package: error: ...``) and the exit code of its cause (docs/reference/exit-codes.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import OK
from .errors import DeployError, ToolError

_EPILOG = """examples:
  python -m worker package . --out my-pipeline.zip
  python -m worker package examples --out examples.zip --python 3.12 --version 2.0.0

environment: XDG_CACHE_HOME (the default --cache-dir is below it); the package index as uv
  and pip are configured (e.g. UV_INDEX_URL, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, pip.conf)

exit codes:
  0 built, 2 bad option, 10 no handler module, 11 a requirement has no wheel for the node,
  12 requirements cannot be resolved, 13 a secret-looking file, 14 output not writable,
  15 download failed, 16 build tool or worker checkout missing, 17 a module imports what
  nothing in the package provides (add it to requirements.txt)

what goes in: every file of PROJECT_DIR but caches, tool folders and what .workerignore
  lists (gitignore syntax); batch.toml, .workerignore and apt-sources.json are read, not
  packaged. Every import of its modules must be provided by Python's standard library, the
  project, the worker's lock or the project's requirements; a module the code runs without
  goes in batch.toml: [package] optional_imports = ["ujson"] (or pyproject.toml's
  [tool.batch-worker] optional-imports). The summary lists the handlers (functions taking
  ctx) by file; a module at the project's root with none is named in a warning."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``package`` options to ``parser``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("project", metavar="PROJECT_DIR",
                        help="folder of handler modules, with its requirements.txt or "
                             "pyproject.toml if it has requirements")
    parser.add_argument("--out", required=True, metavar="ZIP", help="the package to write")
    parser.add_argument("--python", default="3.8", metavar="X.Y",
                        help="the nodes' Python: 3.8 (Ubuntu 22.04 nodes, the default) or "
                             "3.12 (Ubuntu 24.04); spec picks the image that goes with it")
    parser.add_argument("--name", metavar="APP_ID",
                        help="the Batch application id (default: the project's name)")
    parser.add_argument("--version", metavar="VERSION",
                        help="the application package version (default: the project's, "
                             "else 1.0.0)")
    parser.add_argument("--allow-secret-files", action="store_true",
                        help="package files that look like secrets (.env, *.pem, ...) anyway")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="where downloaded wheels are kept (default "
                             "~/.cache/batch-worker/wheels)")
    parser.add_argument("--exclude-newer", metavar="DATE",
                        help="resolve as the index was at DATE (RFC 3339), for a lock that "
                             "cannot drift")
    parser.add_argument("--worker-source", metavar="DIR",
                        help="the batch-worker checkout (default: the one imported)")


def run(args: argparse.Namespace) -> int:
    """Build the package; print what was built; return the exit code."""
    from .package import PackageOptions, build_package

    _setup_logging()
    options = PackageOptions(
        project=Path(args.project), out=Path(args.out), python=args.python, name=args.name,
        version=args.version, allow_secret_files=args.allow_secret_files,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        exclude_newer=args.exclude_newer,
        worker_source=Path(args.worker_source) if args.worker_source else None,
    )
    try:
        built = build_package(options)
    except DeployError as e:
        print("package: error: %s" % e, file=sys.stderr)
        return e.exit_code
    except ImportError as e:  # a build tool of the deploy extra is not installed
        print("package: error: %s: install the build tools with "
              "pip install 'batch-worker[deploy]'" % e, file=sys.stderr)
        return ToolError.exit_code
    sys.stdout.write(summary(built))
    return OK


def summary(built) -> str:
    """What ``package`` prints: size, wheels, Python and platform, the lock's hash."""
    m = built.manifest
    return "".join([
        "built %s\n" % built.path,
        "  package   %s %s (id %s)\n" % (m["name"], m["version"], m["package_id"][:12]),
        "  size      %.1f MiB (%d bytes), sha256 %s\n" % (built.size / 2**20, built.size,
                                                       built.sha256),
        "  wheels    %d\n" % built.wheels,
        "  python    CPython %s on %s\n" % (m["python"], m["platform"]),
        "  lock      %s: %d pins, sha256 %s\n" % (m["lock"], m["pins"], m["lock_sha256"]),
    ]) + _handlers(m)


def _handlers(manifest) -> str:
    """One line per file with handlers, then the other modules (helpers they import)."""
    handlers = manifest.get("handlers") or {}
    lines = ["%s: %s" % (rel, ", ".join(names)) for rel, names in sorted(handlers.items())]
    text = "".join("  %-9s %s\n" % ("handlers" if i == 0 else "", line)
                   for i, line in enumerate(lines or ["none (no function takes ctx)"]))
    others = [rel for rel in manifest.get("module_files", []) if rel not in handlers]
    if others:
        text += "  modules   %s (no handler)\n" % ", ".join(others)
    return text


def _setup_logging() -> None:
    logger = logging.getLogger("worker.deploy")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("package: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
