"""Handlers for tests/test_retries.py: each appends a line to ``marker`` when it runs, so a
test sees whether a retry ran the handler again."""

from pathlib import Path

from worker import PermanentError
from worker.errors import AccessDenied


def _ran(marker):
    with Path(marker).open("a") as handle:
        handle.write("ran\n")


def bad_input(ctx, marker):
    _ran(marker)
    raise PermanentError("raw/sales/2024-01-31.csv row 7 has no amount: fix the file")


def denied(ctx, marker):
    _ran(marker)
    raise AccessDenied("identity 1111 has no role on data/raw: grant it Storage Blob Data Reader")


def fixed_after_first(ctx, marker, note=""):
    _ran(marker)
    if Path(marker).read_text().count("ran") == 1:
        raise PermanentError("raw/sales/x.csv is corrupt")
    return "ok"
