"""A Batch node on this machine, for tests: the folder layout, the variables Batch sets, and
a network namespace with only loopback in which the start task, the tasks and the emulators
run (so the node has nothing but the package's wheelhouse and the emulators to talk to).

Layout, as Batch makes it on Linux (BATCH.md 1.1-1.3)::

    <root>/shared/                        AZ_BATCH_NODE_SHARED_DIR
    <root>/startup/{stdout,stderr}.txt    the start task's task folder; startup/wd its cwd
    <root>/applications/<app><version>/   each extracted package, AZ_BATCH_APP_PACKAGE_...
    <root>/workitems/<job>/job-1/<task>/  a task's folder (stdout.txt, stderr.txt, wd/)
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

TESTS_DIR = Path(__file__).resolve().parent
NODE_ID = "tvmps_node1"
PYENV = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv")))


def python_of(version: str) -> Optional[Path]:
    """pyenv's newest Python X.Y: the node's Python here (Ubuntu's on a real node)."""
    found = sorted(PYENV.glob("versions/%s.*/bin/python%s" % (version, version)))
    return found[-1] if found else None


def python38() -> Optional[Path]:
    return python_of("3.8")


def node_environment(text: str) -> Dict[str, str]:
    """The variables of the emulators' env file as a node gets them: without App Service's
    identity variables (azure-identity would prefer them; a Batch node has IMDS only)."""
    from worker import envfile
    from worker.emulators import APP_SERVICE_VARIABLES

    env = envfile.parse(text)
    return {k: v for k, v in env.items() if k not in APP_SERVICE_VARIABLES}


def node_requirements() -> list:
    """The ``pytestmark`` of a module that runs a node in a namespace without network."""
    import pytest

    return [
        pytest.mark.skipif(python38() is None, reason="needs a pyenv Python 3.8 for the node"),
        pytest.mark.skipif(not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")),
                           reason="needs unshare, nsenter and ip (util-linux, iproute2)"),
    ]


class Namespace:
    """A network namespace with only loopback, held open by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 30
        while os.readlink("/proc/%d/ns/net" % self.holder.pid) == ours:
            if time.monotonic() > deadline or self.holder.poll() is not None:
                raise RuntimeError("unshare --net did not create a namespace")
            time.sleep(0.01)
        subprocess.run(self.wrap(["ip", "link", "set", "lo", "up"]), check=True)

    def wrap(self, argv: List[str]) -> List[str]:
        return ["nsenter", "--target", str(self.holder.pid), "--net", "--", *argv]

    def links(self) -> List[str]:
        out = subprocess.run(self.wrap(["ip", "-o", "link"]), capture_output=True, text=True,
                             check=True).stdout
        return [line.split(":")[1].strip() for line in out.splitlines()]

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


class Emulators:
    """``python -m worker emulate`` inside the namespace, with its environment: the node's
    identity endpoint is its VM's (``/vms/NODE_ID``), with Azure's limits."""

    def __init__(self, ns: Namespace, folder: Path, secrets: Dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "emulators.json"
        config.write_text(json.dumps({"filesystems": ["data"], "secrets": secrets}))
        env_file = folder / "emulators.env"
        self.log = (folder / "emulators.log").open("w")
        self.process = subprocess.Popen(
            ns.wrap([sys.executable, "-m", "worker", "emulate", "--config", str(config),
                     "--env-file", str(env_file)]),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not env_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulators did not start: see %s" % self.log.name)
            time.sleep(0.05)
        self.env = node_environment(env_file.read_text())
        self.env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] += "/vms/" + NODE_ID
        self.ns = ns

    def lake(self, *args: str, data: bytes = b"") -> bytes:
        """Run tests/ns_lake.py (the raw Data Lake SDK) inside the namespace."""
        from worker.emulators import CLEARED_VARIABLES

        env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
        env.update(self.env)
        result = subprocess.run(self.ns.wrap([sys.executable, str(TESTS_DIR / "ns_lake.py"),
                                              *args]),
                                input=data, env=env, capture_output=True, timeout=120)
        if result.returncode:
            raise AssertionError(result.stderr.decode())
        return result.stdout

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class Node:
    """One node's folders and variables; commands run inside ``ns``."""

    def __init__(self, root: Path, ns: Namespace) -> None:
        self.root = root
        self.ns = ns
        for folder in ("shared", "startup/wd", "applications", "workitems"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.packages: Dict[str, str] = {}  # variable -> package folder
        self.env_root = root / "shared" / "batch-worker"

    def install(self, package: Path, variable: str, folder: str) -> Path:
        """Extract a package as Batch does (Python's zipfile keeps no executable bit) and
        set its variable."""
        target = self.root / "applications" / folder
        with zipfile.ZipFile(str(package)) as archive:
            archive.extractall(str(target))
        self.packages[variable] = str(target)
        return target

    def environment(self, packages: Optional[Dict[str, str]] = None,
                    **extra: str) -> Dict[str, str]:
        """The variables Batch sets; ``packages`` replaces the package variables."""
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.root),
            "PYENV_ROOT": str(PYENV),   # the node's Python (3.8, 3.12) is pyenv's here
            "AZ_BATCH_ACCOUNT_NAME": "account",
            "AZ_BATCH_POOL_ID": "pool",
            "AZ_BATCH_NODE_ID": NODE_ID,
            "AZ_BATCH_NODE_IS_DEDICATED": "true",
            "AZ_BATCH_NODE_ROOT_DIR": str(self.root),
            "AZ_BATCH_NODE_SHARED_DIR": str(self.root / "shared"),
            "AZ_BATCH_NODE_STARTUP_DIR": str(self.root / "startup"),
        }
        env.update(self.packages if packages is None else packages)
        env.update(extra)
        return env

    def start_task(self, command_line: str, **extra: str) -> "Run":
        folder = self.root / "startup"
        env = self.environment(AZ_BATCH_TASK_DIR=str(folder),
                               AZ_BATCH_TASK_WORKING_DIR=str(folder / "wd"), **extra)
        return Run(self, folder, command_line, env).wait()

    def task(self, job: str, task_id: str, command_line: str,
             packages: Optional[Dict[str, str]] = None, **extra: str) -> "Run":
        """Start a task; ``.wait()`` for it."""
        folder = self.root / "workitems" / job / "job-1" / task_id
        (folder / "wd").mkdir(parents=True, exist_ok=True)
        env = self.environment(packages, AZ_BATCH_JOB_ID=job, AZ_BATCH_TASK_ID=task_id,
                               AZ_BATCH_TASK_DIR=str(folder),
                               AZ_BATCH_TASK_WORKING_DIR=str(folder / "wd"), **extra)
        return Run(self, folder, command_line, env)

    def pointers(self) -> Dict[str, List[str]]:
        folder = self.env_root / "packages"
        return {p.name: p.read_text().splitlines() for p in sorted(folder.iterdir())}


class Run:
    """A command line run as Batch runs one: split into words (no shell), in the task's
    working folder, stdout and stderr to the task folder's files."""

    def __init__(self, node: Node, folder: Path, command_line: str, env: Dict[str, str]):
        self.folder = folder
        self.stdout_path = folder / "stdout.txt"
        self.stderr_path = folder / "stderr.txt"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(node.ns.wrap(shlex.split(command_line)),
                                            cwd=str(folder / "wd"), env=env, stdout=out,
                                            stderr=err)
        self.returncode: Optional[int] = None
        self._kept: Optional[Tuple[str, str]] = None

    def wait(self, timeout: float = 600) -> "Run":
        """Wait for the process, then keep its output (a rerun in the same folder, as the
        start task's, overwrites the files)."""
        self.returncode = self.process.wait(timeout=timeout)
        self._kept = (self.stdout_path.read_text(), self.stderr_path.read_text())
        return self

    def wait_for_stderr(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("%r never appeared on stderr:\n%s" % (text, self.stderr))
            time.sleep(0.05)

    @property
    def stdout(self) -> str:
        return self._kept[0] if self._kept else self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self._kept[1] if self._kept else self.stderr_path.read_text()

    @property
    def result(self) -> dict:
        return json.loads((self.folder / "wd" / "result.json").read_text())
