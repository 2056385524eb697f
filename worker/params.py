"""Handler parameters from a JSON file, a JSON string and ``key=value`` pairs.

Sources merge in that order, later ones winning, so a task can take a shared parameters
file and override one value. Values keep their JSON type from a file or JSON string;
``key=value`` values are strings.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ParameterError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, Dict, Iterable, Optional


def collect_params(
    pairs: Iterable[str] = (),
    params_file: Optional[str] = None,
    params_json: Optional[str] = None,
) -> Dict[str, Any]:
    """Merge the three sources into one dict; raise ParameterError on bad input."""
    params: Dict[str, Any] = {}
    if params_file:
        params.update(_from_file(params_file))
    if params_json:
        params.update(_from_json(params_json, "--params-json"))
    for pair in pairs:
        key, value = _split_pair(pair)
        params[key] = value
    return params


def _from_file(path: str) -> Dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ParameterError(
            f"--params-file {path!r} cannot be read: {e.strerror}; check the path",
            code="params.file",
        ) from None
    return _from_json(text, f"--params-file {path!r}")


def _from_json(text: str, source: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ParameterError(
            f"{source} is not valid JSON ({e}); give an object like '{{\"date\": \"2024-01-31\"}}'",
            code="params.bad_json",
        ) from None
    if not isinstance(value, dict):
        raise ParameterError(
            f"{source} must be a JSON object of name -> value, not {type(value).__name__}; "
            'give an object like \'{"date": "2024-01-31"}\'',
            code="params.bad_json",
        )
    return value


def _split_pair(pair: str):
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ParameterError(
            f"--param {pair!r} is not KEY=VALUE with KEY a Python identifier; "
            "write e.g. --param date=2024-01-31",
            code="params.bad_format",
        )
    return key, value
