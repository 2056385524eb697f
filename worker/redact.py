"""Secret redaction: every secret value read in the process is replaced by ``***``.

The secrets module registers each value it hands out; log formatting, error messages and
the result record pass their text through :func:`redact`. A process-wide registry, because
a secret can surface anywhere: in a handler's own log call or an exception it raises.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, List

MASK = "***"
# Values this short would mask ordinary words and digits; Key Vault secrets are longer.
_MIN_LENGTH = 4

_lock = threading.Lock()
_values: List[str] = []


def register_secret(value: str) -> None:
    """Remember ``value`` so that it is masked from now on."""
    if not isinstance(value, str) or len(value) < _MIN_LENGTH:
        return
    with _lock:
        if value not in _values:
            _values.append(value)
            # Longest first, so a secret containing another is masked whole.
            _values.sort(key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if not _values or not text:
        return text
    for value in list(_values):
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_value(value: Any) -> Any:
    """Redact strings inside a JSON-like structure (dicts, lists, strings)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def forget_all() -> None:
    """Clear the registry (tests running several tasks in one process)."""
    with _lock:
        _values.clear()


def redact_bytes(data: bytes) -> bytes:
    """``data`` with every registered secret (as UTF-8) replaced by ``***``."""
    if not _values or not data:
        return data
    for value in list(_values):
        encoded = value.encode("utf-8", "surrogateescape")
        if encoded in data:
            data = data.replace(encoded, _MASK_BYTES)
    return data


_MASK_BYTES = MASK.encode()
