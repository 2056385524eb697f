"""Loopback emulators of Data Lake Gen2, Key Vault secrets and managed identity (IMDS).

They speak the real services' wire protocols so that the real Azure SDK clients run
against them unchanged, over HTTPS with a throwaway CA and real (signed, expiring,
audience-checked) tokens. They never import the worker's own lake, secrets or identity
code: an emulator built on our client would only agree with itself.

Start them with ``python -m worker emulate``, with the pytest fixtures of
``worker.testing``, or in code::

    from worker.emulators import EmulatorSet
    with EmulatorSet() as emulators:
        env = emulators.environment()
"""

from __future__ import annotations

from .config import EmulatorConfig, load_config, parse_config
from .emulators import APP_SERVICE_VARIABLES, CLEARED_VARIABLES, EmulatorSet

__all__ = ["APP_SERVICE_VARIABLES", "CLEARED_VARIABLES", "EmulatorConfig", "EmulatorSet",
           "load_config", "parse_config"]
