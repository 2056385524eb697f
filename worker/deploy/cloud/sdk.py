"""Whether this Python can run the deploy loop: Python >= 3.9 and the deploy extra's SDKs."""

from __future__ import annotations

import sys

from ..errors import CloudError

MINIMUM = (3, 9)
#: How to get such an environment: in a checkout, the dev environment on 3.12 (its lock has
#: the deploy extra's SDKs); elsewhere, the extra in a Python >= 3.9.
FIX = ("in a checkout, bash bootstrap/devenv.sh --python 3.12 then .worker/dev-py312/bin/python "
       "-m worker ...; elsewhere pip install 'batch-worker[deploy]' in a Python >= 3.9")


class SdkMissing(CloudError):
    code = "deploy.sdk"


def require_sdk(command: str) -> None:
    """Raise :class:`SdkMissing` (one line, exit 2) unless azure-batch 15, azure-mgmt-batch
    19 and azure-identity import here."""
    if sys.version_info < MINIMUM:
        raise SdkMissing(
            "%s needs Python >= 3.9 and the deploy extra (azure-batch 15, azure-mgmt-batch "
            "19); this is Python %d.%d: %s" % ((command,) + tuple(sys.version_info[:2]) + (FIX,)))
    try:
        import azure.batch  # noqa: F401
        import azure.identity  # noqa: F401
        import azure.mgmt.batch  # noqa: F401
        from azure.batch import models
    except ImportError as e:
        raise SdkMissing("%s needs the deploy extra (%s): %s" % (command, e, FIX)) from None
    if not hasattr(models, "BatchTaskCreateOptions"):  # azure-batch 14.x, the 3.8 dev lock's
        raise SdkMissing("%s needs azure-batch 15 or newer (the deploy extra): %s"
                         % (command, FIX))
