"""Tests of handlers.orders against the emulated Data Lake and Key Vault.

The fixtures (emulators, emulator_filesystem, emulator_environ) come with batch-worker's
pytest plugin; each test starts from an empty file system and no secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from worker.testing import run_handler

SAMPLE_LAKE = Path(__file__).resolve().parent.parent / "data" / "lake"


def test_summarize_writes_the_totals_and_their_signature(
    emulators, emulator_filesystem, emulator_environ
):
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))
    emulators.seed_secret("signing-key", "test-key")

    result = run_handler("handlers.orders:summarize", {"date": "2024-01-31"})

    assert result.exit_code == 0, result.error
    assert result.return_value == {"regions": 3, "orders": 6}
    body = emulators.read_file(emulator_filesystem, "curated/orders/2024-01-31.json")
    assert json.loads(body)[0] == {"region": "apac", "orders": 1, "total": 42.0}
    sig = emulators.read_file(emulator_filesystem, "curated/orders/2024-01-31.json.sig")
    expected = hmac.new(b"test-key", body, hashlib.sha256).hexdigest()
    assert sig.decode().strip() == expected
    assert "curated/orders/2024-01-31.parquet" in [o["path"] for o in result.outputs]


def test_a_missing_day_is_bad_input_and_writes_nothing(
    emulators, emulator_filesystem, emulator_environ
):
    result = run_handler("handlers.orders:summarize", {"date": "1999-12-31"})

    assert result.exit_code == 4  # PermanentError: Batch should not retry it
    assert "no orders for 1999-12-31" in result.error["message"]
    assert result.outputs == []
