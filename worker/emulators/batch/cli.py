"""``emulate --batch``'s options, and ``emulate batch preempt NODE``: preempt a spot node of
the running service, as Azure takes a Spot VM back (its running tasks run again elsewhere).

The command finds the service from the environment a client uses (``AZURE_BATCH_ENDPOINT``,
``AZURE_BATCH_ACCOUNT``, ``AZURE_BATCH_ACCESS_KEY``, ``REQUESTS_CA_BUNDLE``), or from the
emulators' env file given with ``--env-file``, and asks it over its own HTTPS endpoint,
signed with the account key.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from ..options import non_negative, positive
from .auth import sign, string_to_sign
from .hosting import DEFAULT_ARM_PORT, DEFAULT_PORT, BatchHost
from .service import BatchSettings, new_key

PREEMPT_PATH = "/emulator/preempt/%s"
API_VERSION = "2025-06-01"

HELP = """\
the local Batch service (--batch): an Azure Batch account at https://127.0.0.1:PORT (the
  data plane of azure-batch and `az batch`) and its account plane (ARM: applications,
  package versions, pools; azure-mgmt-batch with base_url), with pools of simulated nodes
  on this machine. The env file adds AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT,
  AZURE_BATCH_ACCESS_KEY, AZURE_ARM_ENDPOINT, AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP.
  --time-scale 60 makes a minute of the service's clock (autoscale intervals, spot
  preemption, node allocation) pass in a second; tasks run in real time. The account
  enforces its core and pool quotas (--dedicated-core-quota, ...) and, for Entra tokens,
  the Azure roles --config gives each identity ("batch": ["Azure Batch Data Contributor"]).
  python -m worker emulate --batch --batch-package app.zip --time-scale 60 \\
      --preempt-rate 2 --env-file .emulators.env
  python -m worker emulate batch preempt tvmps_..._p    # with the env file loaded
  docs/batch-service.md lists the operations served."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("action", nargs="*", metavar="batch preempt NODE",
        help="(with --batch running elsewhere) preempt that spot node of the local Batch "
             "service")
    add("--batch", action="store_true",
        help="also run a local Azure Batch account (see 'the local Batch service' below)")
    add("--batch-port", type=int, metavar="PORT",
        help="its HTTPS port (default %d, or any free one if that is taken)" % DEFAULT_PORT)
    add("--arm-port", type=int, metavar="PORT",
        help="the account plane's HTTPS port (default %d, or any free one if that is taken)"
             % DEFAULT_ARM_PORT)
    add("--batch-account", default="localbatch", metavar="NAME",
        help="the account's name (default localbatch)")
    add("--batch-package", action="append", default=[], metavar="ZIP",
        help="an application package (python -m worker package) the account starts with, "
             "active and its application's default version (repeatable)")
    add("--time-scale", type=positive, default=1.0, metavar="N",
        help="service seconds per real second (default 1)")
    add("--preempt-rate", type=non_negative, default=0.0, metavar="N",
        help="preemptions per spot node-hour of service time (default 0: never)")
    add("--preempt-recovery", type=non_negative, default=120.0, metavar="SECONDS",
        help="service seconds a preempted node stays preempted (default 120)")
    add("--node-start", type=non_negative, default=0.0, metavar="SECONDS",
        help="service seconds a new node takes to be allocated (default 0)")
    defaults = BatchSettings()
    add("--dedicated-core-quota", type=int, default=defaults.dedicated_core_quota,
        metavar="N", help="the account's dedicated vCPUs across its pools (default %d)"
        % defaults.dedicated_core_quota)
    add("--low-priority-core-quota", type=int, default=defaults.low_priority_core_quota,
        metavar="N", help="its spot (low-priority) vCPUs (default %d)"
        % defaults.low_priority_core_quota)
    add("--pool-quota", type=int, default=defaults.pool_quota, metavar="N",
        help="how many pools it may have (default %d)" % defaults.pool_quota)


def host(args: argparse.Namespace, data_dir: Optional[str], seed: Optional[int]
         ) -> Optional[BatchHost]:
    """The Batch account ``emulate`` runs, or None without ``--batch``."""
    if not args.batch:
        return None
    settings = BatchSettings(
        account=args.batch_account, key=_key(data_dir), time_scale=args.time_scale,
        preempt_rate=args.preempt_rate, seed=seed, recovery=args.preempt_recovery,
        node_start=args.node_start, dedicated_core_quota=args.dedicated_core_quota,
        low_priority_core_quota=args.low_priority_core_quota, pool_quota=args.pool_quota)
    return BatchHost(settings, port=args.batch_port or 0,
                     preferred_port=0 if args.batch_port == 0 else DEFAULT_PORT,
                     arm_port=args.arm_port or 0,
                     preferred_arm_port=0 if args.arm_port == 0 else DEFAULT_ARM_PORT)


def load_packages(args: argparse.Namespace, batch: Optional[BatchHost]) -> List[str]:
    """Seed ``--batch-package`` zips; one line each for the log."""
    if batch is None or batch.service is None:
        return []
    lines = []
    for archive in args.batch_package:
        app, version = batch.service.apps.add_zip(Path(archive))
        lines.append("application package %s %s from %s" % (app, version, archive))
    return lines


def _key(data_dir: Optional[str]) -> str:
    """The account key: kept under ``--data``, so an env file stays good across restarts."""
    if not data_dir:
        return new_key()
    path = Path(data_dir) / "batch.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_key())
        path.chmod(0o600)
    return path.read_text().strip()


# -- emulate batch preempt NODE ---------------------------------------------------------------

def run_action(args: argparse.Namespace) -> int:
    words = list(args.action)
    if len(words) != 3 or words[:2] != ["batch", "preempt"]:
        print("emulate: unknown command %r: the one command is 'emulate batch preempt NODE' "
              "(see emulate --help)" % " ".join(words), file=sys.stderr)
        return 2
    env = _environment(args.env_file)
    missing = [n for n in ("AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT",
                           "AZURE_BATCH_ACCESS_KEY") if not env.get(n)]
    if missing:
        print("emulate batch preempt: %s not set: load the env file of the running emulators "
              "(set -a; . .emulators.env; set +a) or pass --env-file" % ", ".join(missing),
              file=sys.stderr)
        return 2
    return _preempt(env, words[2])


def _environment(env_file: Optional[str]) -> Dict[str, str]:
    env = dict(os.environ)
    if env_file:
        try:
            lines = Path(env_file).read_text().splitlines()
        except OSError as e:
            print("emulate batch preempt: cannot read --env-file %s: %s" % (
                env_file, e.strerror or e), file=sys.stderr)
            return {}
        env.update(line.split("=", 1) for line in lines if "=" in line)
    return env


def _preempt(env: Dict[str, str], node_id: str) -> int:
    path = PREEMPT_PATH % node_id
    query = "api-version=%s" % API_VERSION
    headers = {"ocp-date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
               "Content-Length": "0",  # urllib would add a form Content-Type: sign our own
               "Content-Type": "application/json; odata=minimalmetadata"}
    account = env["AZURE_BATCH_ACCOUNT"]
    headers["Authorization"] = "SharedKey %s:%s" % (account, sign(string_to_sign(
        "POST", path, query, headers, account), env["AZURE_BATCH_ACCESS_KEY"]))
    request = urllib.request.Request(env["AZURE_BATCH_ENDPOINT"].rstrip("/") + path + "?" +
                                     query, data=b"", headers=headers, method="POST")
    context = ssl.create_default_context(cafile=env.get("REQUESTS_CA_BUNDLE") or None)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            document = json.loads(answer.read().decode())
    except urllib.error.HTTPError as e:
        detail = json.loads(e.read().decode() or "{}")
        message = (detail.get("message") or {}).get("value", str(e)).split("\n")[0]
        print("emulate batch preempt: %s" % message, file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print("emulate batch preempt: the Batch service at %s did not answer (%s): is "
              "emulate --batch running?" % (env["AZURE_BATCH_ENDPOINT"], e), file=sys.stderr)
        return 3
    print("emulate: node %s of pool %s preempted; %d running task(s) requeued" % (
        node_id, document["poolId"], document["requeued"]))
    return 0
