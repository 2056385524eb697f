"""Start ``python -m worker emulate`` in its own process for a benchmark.

Its own process, so the servers do not share the client's GIL: the figures then measure the
client, as against Azure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent


def start_emulators(
    workdir: Path, faults: Optional[List[dict]] = None, timeout: float = 60
) -> Tuple[subprocess.Popen, Dict[str, str]]:
    """Start the emulators; return the process and the environment they printed."""
    workdir = Path(workdir)
    env_file = workdir / "emulators.env"
    command = [sys.executable, "-m", "worker", "emulate", "--env-file", str(env_file)]
    if faults:
        (workdir / "faults.json").write_text(json.dumps(faults))
        command += ["--faults", str(workdir / "faults.json")]
    proc = subprocess.Popen(command, cwd=str(ROOT), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not env_file.exists():  # written whole, once the servers listen
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the emulators did not start (exit {proc.poll()})")
        time.sleep(0.05)
    lines = env_file.read_text().splitlines()
    return proc, dict(line.split("=", 1) for line in lines if "=" in line)
