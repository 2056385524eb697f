"""Build the application package: one reproducible zip a node starts from with no network.

Layout at the zip's root::

    starttask.sh, bootstrap/     the start task (run with `bash`, never through an exec bit)
    task.sh                      the launcher: bash task.sh run module:function --param ...
    locks/pyXY.txt               the lock: the worker's pins + what the project adds, hashed
    wheels/                      every wheel of the lock for the node, uv's, the worker's
    app/                         the project's files (its handler modules)
    package.env                  what the start task and launcher read (id, Python, name)
    manifest.json                what was built, for people and tools
    apt-sources.json             copied from the project, when it has one

Before it is written, every import of the project's modules is checked against what the
nodes will have (:mod:`worker.deploy.imports`): a module nothing provides fails the build.
The same inputs (project, worker checkout, options, and what the index serves: pin your
requirements or pass ``exclude_newer``) give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import lockfile
from .archive import AtomicOutput, Content
from .errors import PackageUsageError
from .imports import ModuleScan, Providers, check_imports, project_index, scan_module, wheel_index
from .lock import PLATFORM_TAG, build_lock
from .project import IGNORE_FILE, Project, load_project
from .source import WorkerSource, find_uv
from .wheels import collect, default_cache
from .wheels import sha256 as sha256_file
from .worker_wheel import build_worker_wheel

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
_APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PYTHON = re.compile(r"^3\.[0-9]{1,2}$")


@dataclass(frozen=True)
class PackageOptions:
    """What ``python -m worker package`` was asked to build."""

    project: Path
    out: Path
    python: str = "3.8"
    name: Optional[str] = None  # the Batch application id (default: the project's name)
    version: Optional[str] = None  # the application package version
    allow_secret_files: bool = False
    cache_dir: Optional[Path] = None
    exclude_newer: Optional[str] = None
    worker_source: Optional[Path] = None


@dataclass(frozen=True)
class BuiltPackage:
    """What was built: the summary ``python -m worker package`` prints."""

    path: Path
    size: int
    sha256: str
    wheels: int
    manifest: Dict[str, object]


def build_package(options: PackageOptions) -> BuiltPackage:
    """Build the package described by ``options``; raise a DeployError on bad input."""
    if not _PYTHON.match(options.python):
        raise PackageUsageError("--python must look like 3.8, got %r" % options.python)
    output = AtomicOutput(options.out)
    try:
        built = _build(options, output)
        output.commit()
    except BaseException:
        output.discard()
        raise
    return built


def _build(options: PackageOptions, output: AtomicOutput) -> BuiltPackage:
    project = load_project(options.project, options.allow_secret_files,
                           exclude=[options.out, output.tmp])
    name, version = _identity(options, project)
    scans = _scan(project, options.python)
    source = WorkerSource.find(options.worker_source)
    worker_lock = source.lock(options.python)
    uv = find_uv()
    lock_text = build_lock(uv, worker_lock, project.requirements, options.python,
                           source.version, options.exclude_newer)
    lock_pins = lockfile.parse(lock_text)
    pins = lock_pins + lockfile.parse(source.tools_lock.read_text("utf-8"))
    wheels = collect(pins, options.python, options.cache_dir or default_cache(),
                     source.wheelhouse())
    with tempfile.TemporaryDirectory(prefix="worker-package-") as tmp:
        worker_wheel = build_worker_wheel(uv, source.root, Path(tmp))
        # what a task imports comes from the lock's wheels and the worker's, not the tools'
        _check_imports(project, scans, options.python, [*wheels[:len(lock_pins)], worker_wheel])
        entries, manifest = _contents(options, project, source, name, version, lock_text,
                                      wheels, worker_wheel, worker_lock, scans)
        log.info("writing %s (%d files)", options.out, len(entries))
        output.write_zip(entries)
    return BuiltPackage(options.out, output.tmp.stat().st_size, sha256_file(output.tmp),
                        len(wheels) + 1, manifest)


def _scan(project: Project, python: str) -> List[ModuleScan]:
    """Each module's imports and handlers; a warning for what looks like a local script."""
    scans = [scan_module(path, rel, python) for rel, path in project.module_files]
    for scan in scans:
        if not scan.parsed:
            log.warning("warning: %s does not parse with Python %s (this build's): its imports "
                        "are not checked", scan.file, platform.python_version())
        elif scan.at_root and not scan.handlers:
            log.warning("warning: %s at the project's root defines no handler (no function "
                        "takes ctx) and is packaged as a module; if it is a local script, list "
                        "it in %s", scan.file, IGNORE_FILE)
    return scans


def _check_imports(project: Project, scans: List[ModuleScan], python: str,
                   wheels: List[Path]) -> None:
    providers = Providers(python, project_index(rel for rel, _ in project.files),
                          wheel_index(wheels))
    requirements = project.requirements.name if project.requirements else "requirements.txt"
    checked = check_imports(scans, providers, project.optional_imports, requirements)
    log.info("checked %d imports of %d modules against Python %s's standard library, the "
             "project and the lock", checked, len(scans), python)


def _identity(options: PackageOptions, project: Project) -> Tuple[str, str]:
    name = options.name or project.name
    version = options.version or project.version
    if not _APP_ID.match(name):
        raise PackageUsageError(
            "application id %r is not one Batch takes: up to 64 letters, digits, '-' and '_' "
            "(pass --name)" % name)
    if not _VERSION.match(version):
        raise PackageUsageError(
            "version %r is not one Batch takes: up to 64 letters, digits, '-', '_' and '.' "
            "(pass --version)" % version)
    return name, version


def apt_key_files(declaration: Path) -> List[str]:
    """The ``key_file`` paths (relative to the declaration) of ``apt-sources.json``: the
    start task reads them beside the declaration at the package root. The declaration
    itself is checked by the start task (bootstrap/aptsources.py); here a key file that is
    missing is the only error."""
    try:
        repositories = json.loads(declaration.read_text(encoding="utf-8")).get(
            "repositories", [])
    except (ValueError, AttributeError):
        return []  # the start task's own check names what is wrong with it
    keys = sorted({r["key_file"] for r in repositories
                   if isinstance(r, dict) and isinstance(r.get("key_file"), str)})
    for rel in keys:
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise PackageUsageError("%s: key_file %r must be a path inside the project"
                                    % (declaration, rel))
        if not (declaration.parent / rel).is_file():
            raise PackageUsageError("%s names key_file %r, which is not in the project; add "
                                    "the key file or use key_url" % (declaration, rel))
    return keys


def _contents(options: PackageOptions, project: Project, source: WorkerSource, name: str,
              version: str, lock_text: str, wheels: List[Path], worker_wheel: Path,
              worker_lock: Path, scans: List[ModuleScan]
              ) -> Tuple[Dict[str, Content], Dict[str, object]]:
    lock_bytes = lock_text.encode("utf-8")
    lock_name = "locks/" + worker_lock.name
    worker_sha = sha256_file(worker_wheel)
    package_id = _sha256(("lock=%s python=%s worker=%s" % (
        _sha256(lock_bytes), options.python, worker_sha)).encode())
    entries: Dict[str, Content] = {lock_name: lock_bytes}
    for path in source.node_files():
        entries[path.relative_to(source.root).as_posix()] = path
    for wheel in [*wheels, worker_wheel]:
        entries["wheels/" + wheel.name] = wheel
    for rel, path in project.files:
        entries["app/" + rel] = path
    if project.apt_sources:
        entries["apt-sources.json"] = project.apt_sources
        for rel in apt_key_files(project.apt_sources):  # keys ride beside the declaration
            entries[rel] = project.root / rel
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "python": options.python,
        "platform": PLATFORM_TAG,
        "package_id": package_id,
        "lock": lock_name,
        "lock_sha256": _sha256(lock_bytes),
        "pins": len(lockfile.parse(lock_text)),
        "requirements": project.requirements.name if project.requirements else None,
        "handler_modules": list(project.modules),
        "handlers": {scan.file: list(scan.handlers) for scan in scans if scan.handlers},
        "module_files": [scan.file for scan in scans],
        "optional_imports": list(project.optional_imports),
        "worker_version": source.version,
        "worker_wheel": worker_wheel.name,
        "worker_wheel_sha256": worker_sha,
        "wheels": sorted(w.name for w in [*wheels, worker_wheel]),
        "launcher": "task.sh",
        "start_task": "starttask.sh",
        "app_dir": "app",
        "apt_sources": project.apt_sources is not None,
        "exclude_newer": options.exclude_newer,
    }
    entries["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    entries["package.env"] = _package_env(name, version, options.python, package_id)
    return entries, manifest


def _package_env(name: str, version: str, python: str, package_id: str) -> bytes:
    """KEY=VALUE lines the start task and the launcher read with shell builtins."""
    lines = ["WORKER_PACKAGE_ID=" + package_id, "WORKER_PACKAGE_NAME=" + name,
             "WORKER_PACKAGE_VERSION=" + version, "WORKER_PACKAGE_PYTHON=" + python]
    return ("\n".join(lines) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

