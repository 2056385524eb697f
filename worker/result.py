"""The result record: ``result.json`` after every run, success or not, written atomically.

Batch keeps the task's working directory for its retention time, so the record is where a
job manager (or a person) reads what a task did: status, exit code, error, timings, the
handler's return value and the outputs it committed. Secrets are redacted from all of it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .errors import ConfigError, exit_meaning
from .logs import utc_timestamp
from .redact import redact, redact_value
from .version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, Dict, List, Optional

_REPR_LIMIT = 200


class Result:
    """What a run produced, filled in by the runner; :meth:`to_dict` is the JSON written to
    disk. (A plain class: a dataclass's generated code costs every task's start-up.)"""

    def __init__(self, handler: str, started: float,
                 params: Optional[Dict[str, Any]] = None) -> None:
        self.handler = handler
        self.started = started
        self.status = "failed"
        self.exit_code = 1
        self.error: Optional[Dict[str, Any]] = None  # type, code, message (and service: see runner)
        self.return_value: Any = None
        self.outputs: List[Dict[str, Any]] = []
        self.params: Dict[str, Any] = dict(params or {})
        self.task: Dict[str, Any] = {}
        self.ended: Optional[float] = None
        #: Added to the final log line only (not the record): e.g. where the traceback is.
        self.note = ""

    def to_dict(self) -> Dict[str, Any]:
        ended = self.ended if self.ended is not None else time.time()
        record: Dict[str, Any] = {
            "status": self.status,
            "exit_code": self.exit_code,
            "exit_meaning": exit_meaning(self.exit_code),
            "error": self.error,
            "handler": self.handler,
            "params": self.params,
            "started_at": utc_timestamp(self.started),
            "ended_at": utc_timestamp(ended),
            "duration_s": round(ended - self.started, 3),
            "outputs": self.outputs,
            "task": self.task,
            "worker_version": __version__,
        }
        record.update(_return_fields(self.return_value))
        # The record's own field names are its schema, never redacted (a secret that happens
        # to be a word like "value" must not rename "return_value"); all under them is.
        return {name: redact_value(value) for name, value in record.items()}


def _return_fields(value: Any) -> Dict[str, Any]:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
        text = text if len(text) <= _REPR_LIMIT else text[:_REPR_LIMIT] + "..."
        return {"return_value": None, "return_value_repr": redact(text)}
    return {"return_value": value}


def check_writable(path: Path) -> None:
    """Raise ConfigError unless a record can be written at ``path`` (checked before the
    handler runs, so a bad ``--result`` fails the task before it does any work)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
        probe.write_bytes(b"")
        probe.unlink()
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder")
    except OSError as e:
        raise ConfigError(
            f"cannot write the result record {str(path)!r} ({e.strerror or e}); give --result "
            "a file path in a folder the task may write", code="config.result") from None


def result_bytes(result: Result) -> bytes:
    """The record as written to disk: indented JSON, UTF-8, a final newline."""
    return (json.dumps(result.to_dict(), indent=2, default=str) + "\n").encode("utf-8")


def write_result(path: Path, result: Result) -> None:
    """Write ``result`` as JSON to ``path`` atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(result_bytes(result))
    os.replace(tmp, path)
