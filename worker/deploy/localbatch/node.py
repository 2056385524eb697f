"""One Batch node's folders, packages and variables, on this machine.

Layout, as Batch makes it on Linux (BATCH.md 1.1-1.3)::

    <root>/shared/                        AZ_BATCH_NODE_SHARED_DIR (the start task's
                                          environments live in shared/batch-worker)
    <root>/startup/{stdout,stderr}.txt    the start task's folder; startup/wd its cwd
    <root>/applications/<app><version>/   each package, extracted without executable bits
    <root>/workitems/<job>/job-1/<task>/  a task's folder: stdout.txt, stderr.txt, wd/
    <root>/fsmounts/                      AZ_BATCH_NODE_MOUNTS_DIR

The root outlives a run, as a node's disk outlives a reboot: the next run's start task finds
its environment (a no-op), and only the job's own folder is made afresh.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from ..commandline import package_variable
from ..errors import SpecError
from ..wheels import sha256
from .documents import PackageRef

NODE_ID = "tvmps_localbatch_d"
#: Variables of the caller's environment a node's processes keep (a node has its own PATH;
#: here the caller's finds the Python the start task provisions from).
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ", "PYENV_ROOT", "TMPDIR")


class LocalNode:
    """The node's folders and the variables Batch sets for its start task and tasks.

    ``local-batch`` has one node with the defaults; each node of the local Batch service
    has its id, its spot flag, the account's URL and ``machine``: what the VM itself gives
    every process (its identity endpoint, the CA it trusts)."""

    def __init__(self, root: Path, account: str, pool_id: str,
                 packages: Mapping[str, Path], node_id: str = NODE_ID,
                 dedicated: bool = True, account_url: Optional[str] = None,
                 machine: Optional[Mapping[str, str]] = None) -> None:
        self.root = root.resolve()
        self.account = account
        self.pool_id = pool_id
        self.packages = dict(packages)  # "app version" (lower case) -> zip
        self.variables: Dict[str, str] = {}  # package variable -> extracted folder
        self.node_id = node_id
        self.dedicated = dedicated
        self.account_url = account_url or "https://%s.localbatch.invalid" % account
        self.machine = dict(machine or {})

    def make_folders(self) -> None:
        for name in ("shared", "startup/wd", "applications", "workitems", "fsmounts", "home"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def prepare(self, job_id: str) -> None:
        """Make the folders; the job's own folder starts empty."""
        self.make_folders()
        job = self.root / "workitems" / job_id
        if job.exists():
            shutil.rmtree(str(job))

    def install(self, refs: Sequence[PackageRef]) -> Dict[str, str]:
        """Extract the referenced packages (once per content) and return their variables."""
        found: Dict[str, str] = {}
        for ref in refs:
            archive = self.find(ref)
            manifest = read_manifest(archive)
            name, folder = self.install_archive(manifest["name"], manifest["version"], archive,
                                                ref.version is None)
            found[name] = folder
        return found

    def install_archive(self, app: str, version: str, archive: Path,
                        default: bool) -> Tuple[str, str]:
        """Extract any package zip as ``<root>/applications/<app><version>`` (once per
        content): its variable (without the version for the default one) and folder."""
        folder = self.root / "applications" / (app + version)
        _extract(archive, folder)
        return package_variable(app, None if default else version), str(folder)

    def find(self, ref: PackageRef) -> Path:
        """The --package zip of a reference; without a version, the app's only one."""
        key = ref.app.lower()
        if ref.version is not None:
            archive = self.packages.get("%s %s" % (key, ref.version.lower()))
            if archive is None:
                raise SpecError("the documents reference application package %s version %s, "
                                "and no --package is that one (given: %s): pass its zip "
                                "with --package" % (ref.app, ref.version, self._given()))
            return archive
        matches = [p for k, p in self.packages.items() if k.split(" ")[0] == key]
        if len(matches) != 1:
            raise SpecError("the documents reference application %s's default version: give "
                            "exactly one --package of it (given: %s)" % (ref.app, self._given()))
        return matches[0]

    def _given(self) -> str:
        return ", ".join(sorted(self.packages)) or "none"

    def base_environment(self, inherit: Mapping[str, str]) -> Dict[str, str]:
        """What every process on the node gets: Batch's node variables and the pool's
        package variables (``self.variables``, set by the caller from :meth:`install`)."""
        env = {k: inherit[k] for k in INHERITED if inherit.get(k)}
        env.update({
            "HOME": str(self.root / "home"),
            "AZ_BATCH_ACCOUNT_NAME": self.account,
            "AZ_BATCH_ACCOUNT_URL": self.account_url,
            "AZ_BATCH_POOL_ID": self.pool_id,
            "AZ_BATCH_NODE_ID": self.node_id,
            "AZ_BATCH_NODE_IS_DEDICATED": "true" if self.dedicated else "false",
            "AZ_BATCH_NODE_ROOT_DIR": str(self.root),
            "AZ_BATCH_NODE_SHARED_DIR": str(self.root / "shared"),
            "AZ_BATCH_NODE_STARTUP_DIR": str(self.root / "startup"),
            "AZ_BATCH_NODE_MOUNTS_DIR": str(self.root / "fsmounts"),
            "AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": "1000000000",
        })
        env.update(self.machine)
        env.update(self.variables)
        return env

    def start_task_environment(self, inherit: Mapping[str, str],
                               settings: Mapping[str, str]) -> Dict[str, str]:
        folder = self.root / "startup"
        env = self.base_environment(inherit)
        env.update({"AZ_BATCH_TASK_DIR": str(folder),
                    "AZ_BATCH_TASK_WORKING_DIR": str(folder / "wd")})
        env.update(settings)
        return env

    def task_folder(self, job_id: str, task_id: str) -> Path:
        return self.root / "workitems" / job_id / "job-1" / task_id

    def task_environment(self, inherit: Mapping[str, str], job_id: str, task_id: str,
                         layers: Sequence[Mapping[str, str]]) -> Dict[str, str]:
        """Node variables, the task's own, then ``layers`` in order (the job's common
        environment, the task's settings, the emulators', the command line's)."""
        folder = self.task_folder(job_id, task_id)
        env = self.base_environment(inherit)
        env.update({"AZ_BATCH_JOB_ID": job_id, "AZ_BATCH_TASK_ID": task_id,
                    "AZ_BATCH_TASK_DIR": str(folder),
                    "AZ_BATCH_TASK_WORKING_DIR": str(folder / "wd")})
        for layer in layers:
            env.update(layer)
        return env


def index_packages(zips: Sequence[Path]) -> Dict[str, Path]:
    """``"app version"`` (lower case) -> zip, from each package's manifest."""
    out: Dict[str, Path] = {}
    for archive in zips:
        manifest = read_manifest(archive)
        out["%s %s" % (manifest["name"].lower(), manifest["version"].lower())] = archive
    return out


def read_manifest(archive: Path) -> Dict[str, str]:
    try:
        with zipfile.ZipFile(str(archive)) as handle:
            return json.loads(handle.read("manifest.json").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise SpecError("--package %s is not an application package with a manifest.json "
                        "(%s): build one with python -m worker package" % (archive, e)
                        ) from None


def _extract(archive: Path, folder: Path) -> None:
    """Extract as Batch does, keeping no executable bit (Python's zipfile sets none); an
    unchanged package is left as it is, a changed one (same version, rebuilt) replaced."""
    digest = sha256(archive)
    stamp = folder.parent / (".%s.sha256" % folder.name)
    if folder.is_dir() and stamp.is_file() and stamp.read_text() == digest:
        return
    if folder.exists():
        shutil.rmtree(str(folder))
    with zipfile.ZipFile(str(archive)) as handle:
        handle.extractall(str(folder))
    stamp.write_text(digest)
