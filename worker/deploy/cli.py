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
  15 download failed, 16 build tool or worker checkout missing"""


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
        "  handlers  %s\n" % ", ".join(m["handler_modules"]),
    ])


def _setup_logging() -> None:
    logger = logging.getLogger("worker.deploy")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("package: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
