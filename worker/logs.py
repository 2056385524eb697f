"""Log set-up: one line per record on stderr, text or JSON, UTC, ids on every record.

Batch keeps a task's stdout.txt and stderr.txt and nothing else, so logs are lines. The
handler installed here sits on the root logger, so a handler's own ``logging`` calls are
captured with the same format, ids and secret redaction as the harness's.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from .redact import redact

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import IO, Optional

_HANDLER_NAME = "worker"
# Attributes every LogRecord has; anything else was passed with extra= and is kept in JSON.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_IDS = ("job_id", "task_id")


def utc_timestamp(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2024-01-31T12:00:00.123Z."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"


class _TaskIds(logging.Filter):
    """Stamps the job and task ids on every record that reaches the handler."""

    def __init__(self, job_id: str, task_id: str) -> None:
        super().__init__()
        self.job_id, self.task_id = job_id, task_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = self.job_id
        record.task_id = self.task_id
        return True


class TextFormatter(logging.Formatter):
    """``2024-01-31T12:00:00.123Z INFO job/task logger: message``."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{utc_timestamp(record.created)} {record.levelname} "
            f"{record.job_id}/{record.task_id} {record.name}: {record.getMessage()}"
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with ``extra=`` fields kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "job_id": record.job_id,
            "task_id": record.task_id,
            "msg": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def failure_of(line: str) -> str:
    """The failure a task's last stderr line states, without what a report says in columns
    of its own: the log line's time, level, ids and logger (text or JSON format) and the
    harness's "task failed after 0.01s: exit 4 (bad input data, ...): "; any other line as
    it is."""
    import re  # only where a report reads lines back (the task path compiles no regex)

    message = line
    if line.startswith("{"):
        try:
            message = str(json.loads(line).get("msg", line))
        except (ValueError, AttributeError):
            pass
    else:
        message = re.sub(r"^\d{4}-\d\d-\d\dT[\d:.]+Z [A-Z]+ \S+ [\w.]+: ", "", line)
    return re.sub(r"^task [a-z_]+ after [\d.]+s: exit -?\d+ \([^)]*\): ", "", message)


def setup_logging(
    fmt: str, level: str, job_id: str, task_id: str, stream: Optional[IO[str]] = None
) -> logging.Handler:
    """Install the worker's handler on the root logger (replacing an earlier one)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_TaskIds(job_id, task_id))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # The Azure SDK logs every HTTP request at INFO; that drowns a task's own lines.
    logging.getLogger("azure").setLevel(max(logging.WARNING, root.level))
    return handler
