"""``python -m worker emulate``: run the three emulators in the foreground.

Prints the environment a worker needs (``KEY=VALUE`` lines) once every server is ready,
optionally writes it as a dotenv file (``--env-file``), logs one line per request on stderr
(unless ``--quiet``), and serves until SIGTERM or SIGINT, then stops cleanly and exits 0.
The main command line calls :func:`add_arguments` and :func:`run`; ``python -m
worker.emulators`` does the same on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from ..envfile import format_environment
from ..errors import OK, USAGE
from .batch import cli as batch_cli
from .config import ConfigError, load_config
from .emulators import SERVICES, EmulatorSet
from .faults import add_rules
from .identity_limits import Limits
from .options import non_negative, positive
from .seeding import read_secrets
from .server import RequestRecord
from .tls import user_ca_dir

# Ports tried when none is given (Azurite has 10000-10002); a taken one falls back to any.
DEFAULT_PORTS = (10014, 10015, 10016)
PORTS_FILE = "ports.json"


def _epilog() -> str:
    from . import identity, lake, vault
    from .batch import app as batch_app
    from .batch import arm

    def names(operations) -> str:
        return textwrap.fill(", ".join(operations), 78, subsequent_indent=" " * 6).lstrip()

    return _EPILOG % {"lake": names(lake.OPERATIONS), "vault": names(vault.OPERATIONS),
                      "batch": batch_cli.HELP,
                      "identity": names(identity.OPERATIONS),
                      "batch_operations": names(batch_app.OPERATIONS),
                      "arm": names(arm.OPERATIONS),
                      "ports": "/".join(str(p) for p in DEFAULT_PORTS)}


_EPILOG = """\
examples:
  python -m worker emulate --env-file .emulators.env --load-dir data/lake \\
      --load-secrets secrets.json
  set -a; . ./.emulators.env; set +a     # in another shell, once it has printed its
                                         # environment; then run tasks, tests or SDK code
  python -m worker emulate --link-mbps 2000 --latency-ms 10 --quiet    # a D2a_v4's NIC
  (the env file exists while the emulators run: it is removed when they stop; the CA
  bundle it names stays, so a shell that loaded it keeps working)

ports: a port given with --lake-port/--vault-port/--identity-port must be free (0: any free
  port). Without them the lake, vault and IMDS listen on %(ports)s, or under --data
  on the ports of the last run; a port that is taken falls back to any free one, and a line
  on stderr says which.

identity limits: as Azure's IMDS, each VM's managed-identity endpoint serves at most
  --identity-concurrent requests at once (default 5) and --identity-per-second a second
  (default 20); beyond them it answers 429 {"error": "invalid_request", "error_description":
  "Temporarily throttled, too many requests"}. A VM is a path prefix:
  AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:PORT/vms/NAME is VM NAME's endpoint, the
  bare URL VM "default"'s. --identity-latency-ms makes each token request take that long
  (the emulator answers in about a millisecond, IMDS in tens of them), so that the limit on
  requests at once bites as on Azure. --no-identity-limits lifts the limits. At the stop a
  line on stderr counts each VM's token requests, served and throttled.

network model (lake and vault; IMDS is never slowed): --link-mbps is one link shared by
  every connection, as one NIC is: request and response bodies of all connections draw from
  it, so N parallel transfers each get about 1/N. --latency-ms delays every request's
  answer (time to first byte); parallel requests wait in parallel.

fault file (--faults FILE): a JSON list of rules; for each request the first rule that
  matches and fires decides what goes wrong. Example:
  [{"service": "lake", "operation": "read", "kind": "status", "status": 503, "times": 2},
   {"service": "vault", "kind": "status", "status": 429, "retry_after": 1, "times": null,
    "probability": 0.2},
   {"service": "lake", "operation": "append", "kind": "drop"},
   {"service": "lake", "operation": "rename", "kind": "lost", "times": null,
    "probability": 0.2},
   {"service": "lake", "operation": "delete", "kind": "late", "delay": 0.5}]
  keys (all optional):
    service      lake, vault, identity, batch (the --batch account's data plane), arm (its
                 account plane) or * (default *)
    operation    one of the service's operations below, or * (default *)
    kind         status: answer an error in the service's own shape (default)
                 latency: wait `delay` seconds, then serve the request
                 truncate: serve, but cut the body half-way and close the connection
                 drop: close the connection without answering (nothing is applied)
                 lost: apply the request, then close the connection without answering
                   (an answer lost on its way back: the client's retry meets the state
                   its first try made, e.g. a retried delete finds nothing, 404)
                 late: apply the request, then answer after `delay` seconds
                 item: in a batch task.addcollection, answer one task with `status` and
                   `code` inside the 200 (Batch's per-task serverError/clientError)
    status       the HTTP status of kind status (default 503)
    code         the service's error code (default ServerBusy for 503, InternalError for
                 500, TooManyRequests for 429)
    retry_after  seconds, or a string sent as it is (an HTTP date, "Wed, 21 Oct 2026
                 07:28:00 GMT"), as a Retry-After header of kind status (default: none)
    headers      more headers of kind status, e.g. {"retry-after-ms": "250"}
    delay        seconds, for kinds latency and late (default 0)
    times        how many times the rule fires, null for always (default 1)
    probability  the chance (0-1) that a matching request fires it, drawn from a generator
                 seeded by --fault-seed (default 1): the same seed and requests in the
                 same order fire the same faults
  operations:
    lake: %(lake)s
    vault: %(vault)s
    identity: %(identity)s
    batch: %(batch_operations)s
    arm: %(arm)s

--load-secrets FILE: a JSON object of secret name -> string value, e.g.
  {"db-password": "s3cret", "api-key": "k"}; seeded at each start like --config's secrets.
--load-dir DIR: every file below DIR appears at the same relative path in the file system
  --filesystem (default: the first configured), replacing a file --data kept.
--watch: while the emulators run, the --load-secrets file is read every half second; when
  it changes, new and changed secrets are set (a new version each) and those removed from
  it are deleted and purged (a file that does not parse changes nothing, and is reported
  once); below --load-dir, new files and files whose size or time changed are loaded (a
  file removed locally stays in the lake). To set one secret by hand instead: python -m
  worker secrets set NAME (with the env file loaded).

CA: the emulators' CA and the bundle REQUESTS_CA_BUNDLE names (the public roots plus that
  CA) are kept under --data DIR/tls, else in $XDG_CACHE_HOME/batch-worker/emulators
  (~/.cache/...), one per user, reused by every run: the bundle outlives the emulators.

%(batch)s

environment: emulate reads XDG_CACHE_HOME (where the CA is kept without --data); `emulate
  batch preempt` reads AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT, AZURE_BATCH_ACCESS_KEY and
  REQUESTS_CA_BUNDLE (the env file's), unless --env-file names the file.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number, not %s" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more, not %s" % text)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``emulate`` options (and its help's examples and formats) to ``parser``."""
    parser.description = ("Run loopback Data Lake, Key Vault and managed-identity (IMDS)\n"
                          "emulators in the foreground; print the environment a worker and\n"
                          "the Azure clients (SDKs, adlfs, obstore) need.")
    parser.epilog = _epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--lake-port", type=int, metavar="PORT",
                        help="Data Lake (DFS + Blob) HTTPS port; 0: any free port "
                             "(default: see ports below)")
    parser.add_argument("--vault-port", type=int, metavar="PORT",
                        help="Key Vault HTTPS port (default: see ports below)")
    parser.add_argument("--identity-port", type=int, metavar="PORT",
                        help="managed identity (IMDS) http port (default: see ports below)")
    parser.add_argument("--data", metavar="DIR",
                        help="keep lake, secrets, CA, token key and ports in DIR across "
                             "restarts (default: in memory)")
    parser.add_argument("--config", metavar="FILE",
                        help="JSON file of account, file systems, identities and secrets")
    parser.add_argument("--load-dir", metavar="DIR",
                        help="copy the files below DIR into the file system at start")
    parser.add_argument("--load-secrets", metavar="FILE",
                        help="seed the secrets of a JSON object {name: value} at start")
    parser.add_argument("--watch", action="store_true",
                        help="follow --load-secrets and --load-dir while running: a changed "
                             "secrets file is applied, new and changed files are loaded")
    parser.add_argument("--env-file", metavar="PATH",
                        help="also write the environment to PATH (dotenv) once ready; "
                             "removed at the stop")
    parser.add_argument("--filesystem", metavar="NAME",
                        help="file system in WORKER_LAKE_URL and for --load-dir "
                             "(default: the first configured)")
    parser.add_argument("--client-id", metavar="ID",
                        help="AZURE_CLIENT_ID to print (default: the first identity)")
    parser.add_argument("--faults", metavar="FILE",
                        help="JSON list of fault rules (format below)")
    parser.add_argument("--fault-seed", type=int, metavar="N",
                        help="seed for random faults (reproducible runs)")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="deprecated name of --fault-seed")
    parser.add_argument("--link-mbps", type=positive, metavar="N",
                        help="one link of N Mbit/s shared by all lake and vault connections "
                             "(default: unlimited)")
    parser.add_argument("--latency-ms", type=non_negative, default=0.0, metavar="N",
                        help="wait N ms before answering each lake and vault request "
                             "(default 0)")
    parser.add_argument("--identity-concurrent", type=_positive_int, default=5, metavar="N",
                        help="token requests one VM's identity endpoint serves at once "
                             "(default 5, as Azure)")
    parser.add_argument("--identity-per-second", type=positive, default=20.0, metavar="N",
                        help="token requests one VM's identity endpoint serves a second "
                             "(default 20, as Azure)")
    parser.add_argument("--identity-latency-ms", type=non_negative, default=0.0, metavar="N",
                        help="each token request takes N ms, counted among the concurrent "
                             "ones (default 0; IMDS takes tens of ms)")
    parser.add_argument("--no-identity-limits", action="store_true",
                        help="no limits on the identity endpoint")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no log line per request on stderr")
    parser.add_argument("--flat-namespace", action="store_true",
                        help="report a flat Blob Storage account (no hierarchical namespace) "
                             "to Get Account Information, as a misconfigured deployment would")
    batch_cli.add_arguments(parser)


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)  # a watcher never sees half a file


def _remove_env_file(path: Optional[str], text: str) -> None:
    """The env file describes running emulators: removed at the stop, unless something else
    has been written there since (the CA bundle it names stays, for the shells that loaded
    it)."""
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                return
        os.remove(path)
    except OSError:
        pass


def _remembered_ports(data_dir: Optional[str]) -> Tuple[int, int, int]:
    """The ports of the last run under ``data_dir``, else the defaults."""
    if data_dir:
        try:
            with open(os.path.join(data_dir, PORTS_FILE), encoding="utf-8") as f:
                saved = json.load(f)
            return int(saved["lake"]), int(saved["vault"]), int(saved["identity"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # first run, or a file we did not write: the defaults
    return DEFAULT_PORTS


def _remember_ports(data_dir: Optional[str], ports: Tuple[int, int, int]) -> None:
    if data_dir:
        _write_atomic(os.path.join(data_dir, PORTS_FILE), json.dumps(dict(zip(SERVICES, ports))))


def _fault_seed(args: argparse.Namespace) -> Optional[int]:
    if args.seed is not None:
        print("emulate: --seed is deprecated; use --fault-seed", file=sys.stderr)
    return args.fault_seed if args.fault_seed is not None else args.seed


def _build(args: argparse.Namespace) -> EmulatorSet:
    config = load_config(args.config)
    if args.load_secrets:
        secrets = dict(config.secrets)
        secrets.update(read_secrets(args.load_secrets))
        config = config._replace(secrets=tuple(sorted(secrets.items())))
    given = (args.lake_port, args.vault_port, args.identity_port)
    preferred = tuple(p if g is None else 0 for p, g in zip(_remembered_ports(args.data), given))
    data = os.path.abspath(args.data) if args.data else None  # its CA path works anywhere
    emulators = EmulatorSet(config, data_dir=data, lake_port=args.lake_port or 0,
                            vault_port=args.vault_port or 0,
                            identity_port=args.identity_port or 0, seed=_fault_seed(args),
                            link_mbps=args.link_mbps, latency_ms=args.latency_ms,
                            preferred_ports=preferred, ca_dir=None if data else user_ca_dir(),
                            on_request=None if args.quiet else _RequestPrinter(),
                            batch=batch_cli.host(args, data, _fault_seed(args)),
                            identity_limits=_identity_limits(args))
    if args.faults:
        with open(args.faults, encoding="utf-8") as f:
            try:
                rules = json.load(f)
            except ValueError as e:
                raise ConfigError("--faults %s is not valid JSON: %s" % (args.faults, e)) from e
        try:
            add_rules(emulators.faults, rules)
        except ValueError as e:
            raise ConfigError("--faults %s: %s (see emulate --help)" % (args.faults, e)) from e
    return emulators


def _identity_limits(args: argparse.Namespace) -> Optional[Limits]:
    if args.no_identity_limits:
        return None
    return Limits(args.identity_concurrent, args.identity_per_second,
                  args.identity_latency_ms / 1000)


def _report_identity(emulators: EmulatorSet) -> None:
    """One line at the stop: each VM's token requests, served and throttled."""
    stats = emulators.identity_stats()
    if stats:
        print("emulate: identity token requests: %s" % ", ".join(
            "VM %s %d served, %d throttled (429)" % (vm, n["served"], n["throttled"])
            for vm, n in stats.items()), file=sys.stderr)


def _prepare(args: argparse.Namespace, emulators: EmulatorSet) -> List[Any]:
    """After start: report port fallbacks, remember the ports, load a folder; what
    ``--watch`` follows."""
    for note in emulators.notes:
        print("emulate: %s" % note, file=sys.stderr)
    if args.flat_namespace:
        emulators.lake_app.hierarchical_namespace = False
    for line in batch_cli.load_packages(args, emulators.batch):
        print("emulate: %s" % line, file=sys.stderr)
    _remember_ports(args.data, emulators.bound_ports)
    filesystem = args.filesystem or (emulators.config.filesystems or ("data",))[0]
    if args.load_dir:
        count = emulators.load_directory(filesystem, args.load_dir)
        print("emulate: loaded %d file%s from %s into %s" % (
            count, "" if count == 1 else "s", args.load_dir, filesystem), file=sys.stderr)
    if not args.watch:
        return []
    from .watch import LakeFolder, SecretsFile

    followed: List[Any] = []
    if args.load_secrets:
        followed.append(SecretsFile(args.load_secrets, emulators.vault_app.store))
    if args.load_dir:
        followed.append(LakeFolder(args.load_dir, emulators.lake_app.store, filesystem))
    return followed


def _follow(followed: List[Any]) -> None:
    for source in followed:
        for line in source.poll():
            print("emulate: %s" % line, file=sys.stderr)


class _RequestPrinter:
    """One line per request on stderr, as ``func start`` shows each invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, record: RequestRecord) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (
            int(now * 1000) % 1000)
        line = "%s %-8s %-6s %s %s %s %.1f ms\n" % (
            stamp, record.service, record.method, record.path, record.operation, record.status,
            record.milliseconds)
        with self._lock:
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass  # stderr went away: keep serving


def _install_stop_handlers(stop: threading.Event) -> Dict[int, object]:
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


#: The emulators' one dependency beyond the runtime (the ``emulators`` extra).
MISSING_TRUSTME = (
    "emulate: the emulators need trustme, which this Python environment lacks (a node's "
    "environment holds the runtime only); run them from the development environment (bash "
    "bootstrap/devenv.sh in the batch-worker checkout), or pip install "
    "'batch-worker[emulators]'")


def run(args: argparse.Namespace, stop: Optional[threading.Event] = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); 0 on a clean stop, 2 on bad input."""
    import importlib.util

    if getattr(args, "action", None):
        return batch_cli.run_action(args)
    if importlib.util.find_spec("trustme") is None:
        print(MISSING_TRUSTME, file=sys.stderr)
        return USAGE
    if args.watch and not (args.load_secrets or args.load_dir):
        print("emulate: --watch follows --load-secrets FILE and --load-dir DIR; give one of "
              "them", file=sys.stderr)
        return USAGE
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
            followed = _prepare(args, emulators)
            text = format_environment(emulators.environment(args.client_id, args.filesystem))
            if args.env_file:
                _write_atomic(args.env_file, text)
            sys.stdout.write(text)
            sys.stdout.flush()
            try:
                while not stop.wait(0.5):  # short waits keep signals prompt on every platform
                    _follow(followed)
            finally:
                _remove_env_file(args.env_file, text)
                _report_identity(emulators)
    except (ConfigError, OSError) as e:
        print("emulate: %s" % e, file=sys.stderr)
        return USAGE
    finally:
        for signum, previous_handler in previous.items():
            signal.signal(signum, previous_handler)  # type: ignore[arg-type]
    return OK
