"""What the deploy loop's commands share: the account options, the spec file, and the one
place that turns their errors into one line and an exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

from ...errors import SIGINT, WorkerError

ACCOUNT_HELP = """environment (the environment first, as for az batch, then the spec file):
  account: --account-url, else AZURE_BATCH_ENDPOINT, else [pool] account_url, else the
    account plane's for the account AZURE_BATCH_ACCOUNT or [pool] account in
    AZURE_SUBSCRIPTION_ID or [pool] subscription, AZURE_RESOURCE_GROUP or [pool]
    resource_group (ARM at AZURE_ARM_ENDPOINT, default https://management.azure.com)
  sign-in: DefaultAzureCredential (az login; AZURE_CLIENT_ID with a secret, certificate or
    workload identity; a managed identity); --shared-key or WORKER_BATCH_AUTH=shared-key
    signs data-plane requests with the account key in AZURE_BATCH_ACCESS_KEY instead;
    REQUESTS_CA_BUNDLE (the emulators' CA)"""


def add_account_options(parser: argparse.ArgumentParser, spec: bool = True) -> None:
    """``--account-url``, ``--shared-key`` and (``spec``) ``--spec``."""
    parser.add_argument("--account-url", metavar="URL",
                        help="the Batch account's URL, e.g. https://ACCOUNT.REGION.batch."
                             "azure.com (default: see 'account' below)")
    parser.add_argument("--shared-key", action="store_true",
                        help="sign with the account key from AZURE_BATCH_ACCESS_KEY instead "
                             "of signing in with Entra ID")
    if spec:
        parser.add_argument("--spec", metavar="FILE",
                            help="the spec file (default: batch.toml here, when there is one)")


def load_spec(args: argparse.Namespace, overrides: Optional[List[str]] = None,
              package: Any = None) -> Any:
    """The spec file of ``--spec`` (else ./batch.toml when there is one, else none)."""
    from ..specfile import DEFAULT_FILE
    from ..specfile import load_spec as load

    path = Path(args.spec) if getattr(args, "spec", None) else Path(DEFAULT_FILE)
    if not getattr(args, "spec", None) and not path.is_file():
        path = None
    return load(path, overrides or [], package)


def run_command(name: str, body: Callable[[], int]) -> int:
    """Run ``body`` after the SDK check; an error is one line on stderr and its exit code."""
    import logging

    from .sdk import require_sdk

    # The SDKs log their own retries and what they could not parse (a 404's empty body) as
    # warnings; the commands say what matters in their own words.
    logging.getLogger("azure").setLevel(logging.ERROR)
    try:
        require_sdk(name)
        return body()
    except WorkerError as e:
        print("%s: error: %s" % (name, e), file=sys.stderr)
        return e.exit_code
    except ImportError as e:  # tomli on Python < 3.11 comes with the deploy extra
        from .sdk import FIX

        print("%s: error: %s: install the deploy extra: %s" % (name, e, FIX), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted; run it again to go on" % name, file=sys.stderr)
        return SIGINT
