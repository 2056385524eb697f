"""``python -m worker emulate``: run the three emulators in the foreground.

Prints the environment a worker needs (``KEY=VALUE`` lines) once every server is ready,
optionally writes it as a dotenv file (``--env-file``), and serves until SIGTERM or SIGINT,
then stops cleanly and exits 0. The main command line calls :func:`add_arguments` and
:func:`run`; ``python -m worker.emulators`` does the same on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Dict, Optional

from ..errors import OK, USAGE
from .config import ConfigError, load_config
from .emulators import EmulatorSet
from .faults import add_rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``emulate`` options to ``parser``."""
    parser.add_argument("--lake-port", type=int, default=0, metavar="PORT",
                        help="Data Lake (DFS + Blob) HTTPS port (default: any free port)")
    parser.add_argument("--vault-port", type=int, default=0, metavar="PORT",
                        help="Key Vault HTTPS port (default: any free port)")
    parser.add_argument("--identity-port", type=int, default=0, metavar="PORT",
                        help="managed identity (IMDS) http port (default: any free port)")
    parser.add_argument("--data", metavar="DIR",
                        help="keep lake, secrets, CA and token key in DIR across restarts "
                             "(default: in memory)")
    parser.add_argument("--config", metavar="FILE",
                        help="JSON file of account, file systems, identities and secrets")
    parser.add_argument("--env-file", metavar="PATH",
                        help="also write the environment to PATH (dotenv) once ready")
    parser.add_argument("--filesystem", metavar="NAME",
                        help="file system in WORKER_LAKE_URL (default: the first configured)")
    parser.add_argument("--client-id", metavar="ID",
                        help="AZURE_CLIENT_ID to print (default: the first identity)")
    parser.add_argument("--faults", metavar="FILE",
                        help="JSON list of fault rules (see worker.emulators.faults)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for random faults (reproducible runs)")


def format_environment(env: Dict[str, str]) -> str:
    """``KEY=VALUE`` lines: readable by ``set -a; . FILE`` and by dotenv loaders."""
    return "".join("%s=%s\n" % item for item in env.items())


def _write_env_file(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)  # a watcher never sees half a file


def _build(args: argparse.Namespace) -> EmulatorSet:
    emulators = EmulatorSet(load_config(args.config), data_dir=args.data,
                            lake_port=args.lake_port, vault_port=args.vault_port,
                            identity_port=args.identity_port, seed=args.seed)
    if args.faults:
        with open(args.faults, encoding="utf-8") as f:
            add_rules(emulators.faults, json.load(f))
    return emulators


def _install_stop_handlers(stop: threading.Event) -> Dict[int, object]:
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


def run(args: argparse.Namespace, stop: Optional[threading.Event] = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); 0 on a clean stop, 2 on bad input."""
    try:
        emulators = _build(args)
    except (ConfigError, OSError, ValueError, TypeError) as e:
        print("emulate: %s" % e, file=sys.stderr)
        return USAGE
    stop = stop or threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = _install_stop_handlers(stop) if in_main else {}
    try:
        with emulators:
            text = format_environment(emulators.environment(args.client_id, args.filesystem))
            if args.env_file:
                _write_env_file(args.env_file, text)
            sys.stdout.write(text)
            sys.stdout.flush()
            while not stop.wait(0.5):  # short waits keep signals prompt on every platform
                pass
    except OSError as e:
        print("emulate: %s" % e, file=sys.stderr)
        return USAGE
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
    return OK
