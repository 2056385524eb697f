"""What the deploy loop's tests share: a small application package, a spec of a fan-out
with a merge, and ``Loop``: the local Batch service with the emulators' environment, a lake
file system, and the command line run in-process."""

from __future__ import annotations

import io
import json
import shlex
import sys
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Dict, Tuple

REPO = Path(__file__).resolve().parent.parent
IDENTITY = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local-rg/"
            "providers/Microsoft.ManagedIdentity/userAssignedIdentities/loop")


def mini_package(folder: Path, version: str = "1.0.0") -> Path:
    """An application package whose launcher runs this checkout's worker with the test's
    Python (the real package's launcher and start task are tested with the examples)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("mini-%s.zip" % version)
    task = "export PYTHONPATH=%s\nexec %s -m worker \"$@\"\n" % (
        shlex.quote("%s:%s" % (REPO, REPO / "tests")), shlex.quote(sys.executable))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"name": "mini", "version": version}))
        archive.writestr("task.sh", task)
        archive.writestr("starttask.sh", "echo started\n")
    return path


SPEC = """
[package]
app = "mini"
version = "1.0.0"

[pool]
id = "loop"
nodes = 2
task_slots = 2
identity = "%(identity)s"
client_id = "%(client_id)s"

[job]
id = "%(job)s"
lake_url = "%(lake_url)s"

[tasks]
items = { list = ["in/1.txt", "in/2.txt", "in/3.txt", "in/4.txt"] }
command = ["run", "handlers.deploy_loop:item", "--param", "path={item}"]
retries = 1

[merge]
command = ["run", "handlers.deploy_loop:merge", "--param", "items_file={items_file}"]
"""


def make_loop(batch_service, monkeypatch, tmp_path) -> "Loop":
    """The service with the emulators' environment, a lake file system, the package and a
    spec; ``loop.cli(...)`` runs a command and returns (exit code, stdout, stderr)."""
    from worker.emulators.handle import EmulatorHandle

    lake = EmulatorHandle(batch_service.set)
    filesystem = lake.new_filesystem("loop")
    env = batch_service.environment()
    env["WORKER_LAKE_URL"] = "%s/%s" % (lake.account_url, filesystem)
    for name in list(env):
        monkeypatch.setenv(name, env[name])
    monkeypatch.chdir(tmp_path)
    for n in range(1, 5):
        lake.seed_file(filesystem, "in/%d.txt" % n, b"bad" if n == 3 else b"item%d" % n)
    return Loop(batch_service, lake, filesystem, env, tmp_path)


class Loop:
    def __init__(self, service: Any, lake: Any, filesystem: str, env: Dict[str, str],
                 folder: Path) -> None:
        self.service, self.lake, self.filesystem, self.env = service, lake, filesystem, env
        self.folder = folder
        self.package = mini_package(folder)
        self.spec = folder / "batch.toml"
        self.spec.write_text(SPEC % {"identity": IDENTITY, "client_id": env["AZURE_CLIENT_ID"],
                                     "job": "loop1", "lake_url": env["WORKER_LAKE_URL"]})
        service.add_package(self.package)  # in the account (uploads: see test_deploy_examples)

    def cli(self, *argv: str) -> Tuple[int, str, str]:
        """As a new process would: no credential cached by an earlier test (one made for
        other emulators holds tokens these refuse)."""
        from worker.cli import main
        from worker.identity import reset_credential

        reset_credential()
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def read(self, path: str) -> bytes:
        return self.lake.read_file(self.filesystem, path)
