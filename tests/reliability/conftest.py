"""The reliability suite: the README's guarantees probed from outside, through real
processes, real signals and the emulators' fault rules.

Short variants run in CI; ``WORKER_RELIABILITY=long`` runs the long ones whose figures are
in bench/RESULTS.md (e.g. ``WORKER_RELIABILITY=long bash tests/run.sh tests/reliability``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/support.py

LONG = os.environ.get("WORKER_RELIABILITY") == "long"


def scale(short: int, long: int) -> int:
    """How many runs a test makes: ``short`` in CI, ``long`` with WORKER_RELIABILITY=long."""
    return long if LONG else short
