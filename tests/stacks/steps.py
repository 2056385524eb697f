"""Run a client stack's steps one after another, each failure kept with its step's name.

A stack script calls :func:`step` for each thing it checks and :func:`report` at the end:
one JSON object on stdout, ``{"failures": {step: error}, "digests": {path: sha256}}``, which
the test reads. A failed step does not stop the others, so one run shows everything wrong.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Callable, Dict

failures: Dict[str, str] = {}
digests: Dict[str, str] = {}


def step(name: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as e:  # the one boundary: a step's failure is the report's content
        where = traceback.extract_tb(e.__traceback__)[-1]
        failures[name] = "%s: %s (line %d)" % (type(e).__name__, str(e).splitlines()[0]
                                               if str(e) else "", where.lineno)
        return None


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def report() -> None:
    json.dump({"failures": failures, "digests": digests}, sys.stdout)
