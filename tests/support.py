"""Shared helpers for tests that run the worker as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

TESTS_DIR = Path(__file__).resolve().parent

# Variables that would make a test depend on the machine it runs on.
_SCRUB = ("WORKER_", "AZ_BATCH_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_")


def clean_env(**extra: str) -> Dict[str, str]:
    """The current environment without worker/Batch/Azure settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def worker_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "worker", *args]


def run_worker(
    *args: str, cwd: Path = TESTS_DIR, env: Optional[Dict[str, str]] = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run ``python -m worker ARGS`` to completion; capture text output."""
    return subprocess.run(
        worker_cmd(*args),
        cwd=str(cwd),
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_worker(
    *args: str, cwd: Path = TESTS_DIR, env: Optional[Dict[str, str]] = None
) -> subprocess.Popen:
    """Start ``python -m worker ARGS`` in the background."""
    return subprocess.Popen(
        worker_cmd(*args),
        cwd=str(cwd),
        env=env if env is not None else clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, timeout: float = 30) -> None:
    """Block until ``path`` exists (a handler's sign that it is running)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.02)


def wait_for(check, timeout: float = 60.0, what: str = "the condition",
             interval: float = 0.05):
    """``check()``'s first true value, asked every ``interval`` seconds; an assertion error
    naming ``what`` after ``timeout`` seconds (a service's state that changes on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(interval)


def signal_and_wait(proc: subprocess.Popen, *signals: int, timeout: float = 30):
    """Send each signal (a short pause between them) and collect the process's output."""
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.3)
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def read_result(path: Path) -> dict:
    return json.loads(Path(path).read_text())


__all__ = ["signal", "TESTS_DIR"]
