"""Start ``python -m worker emulate`` in its own process for a benchmark.

Its own process, so the servers do not share the client's GIL: the figures then measure the
client, as against Azure. ``link_mbps`` and ``latency_ms`` set the emulators' network model
(one link shared by every lake and vault connection, and a wait before each answer): a
Standard_D2a_v4 node is about ``link_mbps=2000``; Data Lake answers in milliseconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from worker import envfile

ROOT = Path(__file__).resolve().parent.parent


def emulate_command(env_file: Path, faults_file: Optional[Path] = None,
                    link_mbps: Optional[float] = None, latency_ms: float = 0.0) -> List[str]:
    """The ``emulate`` command line: quiet (no line per request), ports of its own choice."""
    command = [sys.executable, "-m", "worker", "emulate", "--quiet", "--env-file", str(env_file),
               "--lake-port", "0", "--vault-port", "0", "--identity-port", "0"]
    if faults_file is not None:
        command += ["--faults", str(faults_file)]
    if link_mbps:
        command += ["--link-mbps", "%g" % link_mbps]
    if latency_ms:
        command += ["--latency-ms", "%g" % latency_ms]
    return command


def start_emulators(
    workdir: Path, faults: Optional[List[dict]] = None, timeout: float = 60,
    link_mbps: Optional[float] = None, latency_ms: float = 0.0,
) -> Tuple[subprocess.Popen, Dict[str, str]]:
    """Start the emulators; return the process and the environment they printed."""
    workdir = Path(workdir)
    env_file = workdir / "emulators.env"
    faults_file = None
    if faults:
        faults_file = workdir / "faults.json"
        faults_file.write_text(json.dumps(faults))
    command = emulate_command(env_file, faults_file, link_mbps, latency_ms)
    proc = subprocess.Popen(command, cwd=str(ROOT), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not env_file.exists():  # written whole, once the servers listen
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the emulators did not start (exit {proc.poll()})")
        time.sleep(0.05)
    return proc, envfile.parse(env_file.read_text())
