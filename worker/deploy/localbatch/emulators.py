"""``--emulators``: ``python -m worker emulate`` beside the node, seeded with the sample data
and the files the job's documents need in the lake, its environment given to every task.

The node is a VM of the identity endpoint (its own path prefix, docs/design.md), throttled
as Azure throttles a VM's managed-identity requests unless ``limits`` is off.

The emulators keep their state in ``<root>/emulators/data`` until the next run starts them
afresh, so what the tasks wrote can be looked at after the run:
``python -m worker emulate --data <root>/emulators/data``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from ... import envfile
from ...errors import ConfigError

#: The App Service identity variables of the emulators' env file: azure-identity would
#: prefer them to the IMDS the node's tasks must use.
APP_SERVICE_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")

START_TIMEOUT = 60.0


class LocalEmulators:
    """A running ``emulate`` process and the environment it printed."""

    def __init__(self, folder: Path, lake_dirs: Sequence[Path], secrets: Optional[Path],
                 vm: str, limits: bool = True):
        if folder.exists():
            shutil.rmtree(str(folder))
        seed = folder / "lake"
        seed.mkdir(parents=True)
        for source in lake_dirs:
            if not source.is_dir():
                raise ConfigError("--lake-dir %s is not a folder: give the folder whose files "
                                  "the emulated lake starts with" % source)
            _copy_tree(source, seed)
        env_file = folder / "emulators.env"
        command = [sys.executable, "-m", "worker", "emulate", "--quiet",
                   "--data", str(folder / "data"), "--env-file", str(env_file),
                   "--load-dir", str(seed)]
        if secrets is not None:
            command += ["--load-secrets", str(secrets)]
        if not limits:
            command.append("--no-identity-limits")
        self.log_path = folder / "emulate.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        self.env = self._wait(env_file)
        self.env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] += "/vms/" + vm

    def _wait(self, env_file: Path) -> Dict[str, str]:
        deadline = time.monotonic() + START_TIMEOUT
        while not env_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise ConfigError("the emulators did not start (%s): see %s"
                                  % ("; ".join(tail) or "no output", self.log_path))
            time.sleep(0.05)
        env = envfile.parse(env_file.read_text())
        for name in APP_SERVICE_VARIABLES:  # a node has IMDS only, as on Batch
            env.pop(name, None)
        return env

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def forget_tokens(node_root: Path) -> None:
    """Tokens the node's tasks shared (worker/tokencache.py) in an earlier run: the emulators
    start afresh with a new signing key, which would refuse them."""
    for path in (node_root / "shared" / "batch-worker" / "tokens").glob("*/*.json"):
        path.unlink()


def _copy_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(str(path), str(dest))
