"""The wheelhouse: check it against the hashed locks, unpack uv from it, build it.

Run by the start task with the node's Python (standard library only, Python 3.8+):

    python wheelhouse.py verify --lock LOCK [--lock TOOLS] [--extract-uv DEST] DIR
    python wheelhouse.py extract-uv WHEEL DEST                   # uv binary from its wheel
    python wheelhouse.py download --lock LOCK --python-version 3.8 DIR   # build one

``verify`` refuses a wheelhouse in which a locked package has no wheel, or in which any wheel
of a locked package has a hash the lock does not list; the installers check the hashes again,
but checking first means a tampered wheel changes nothing on the node. ``--extract-uv``
unpacks uv while the other wheels are hashed and publishes it only when all of them pass.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import stat
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set

#: Wheels the locks do not cover but the wheelhouse may carry: the worker itself.
UNLOCKED = frozenset({"batch-worker"})
#: The manylinux tags the nodes accept, newest first (see BATCH.md section 5): every glibc
#: from 2.28 down, as the locks are resolved for (uv's x86_64-manylinux_2_28), and the legacy
#: aliases, which pip does not derive from the PEP 600 names.
PLATFORMS = tuple("manylinux_2_%d_x86_64" % minor for minor in range(28, 16, -1)) + (
    "manylinux2014_x86_64", "manylinux_2_12_x86_64", "manylinux2010_x86_64",
    "manylinux_2_5_x86_64", "manylinux1_x86_64",
)

_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-fA-F]{64})")


class WheelhouseError(Exception):
    """The wheelhouse cannot be used; the message says why, in one line."""


def normalize(name: str) -> str:
    """The PEP 503 form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> Dict[str, Set[str]]:
    """Map each pinned project of a hashed requirements file to its allowed sha256s."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: Dict[str, Set[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = _REQ.match(line)
        if match:
            pins[normalize(match.group(1))] = {h.lower() for h in _HASH.findall(line)}
    return pins


def sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def project_of(wheel: Path) -> str:
    """The normalized project name in a wheel's file name."""
    return normalize(wheel.name.split("-", 1)[0])


def check(locked: Dict[str, Set[str]], required: Set[str], directory: Path) -> List[str]:
    """Problems found in ``directory``, one line each; empty when it is usable."""
    wheels = [w for w in sorted(directory.glob("*.whl")) if project_of(w) in locked]
    problems = []
    for wheel, digest in zip(wheels, _hash_all(wheels)):
        if digest not in locked[project_of(wheel)]:
            problems.append("hash mismatch: %s is not the file the lock pins" % wheel.name)
    present = {project_of(w) for w in wheels}
    problems.extend("missing wheel: %s" % name for name in sorted(required - present))
    return problems


def _hash_all(wheels: List[Path]) -> List[str]:
    """sha256 of each wheel, on every core (hashlib releases the GIL on large blocks)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(sha256, wheels))


def verify(lock_paths: Sequence[Path], directory: Path) -> None:
    """Raise WheelhouseError unless every wheel of the first lock is present and intact.

    Further lock files (the tools) are optional: their wheels are checked when present.
    """
    if not directory.is_dir():
        raise WheelhouseError("no such directory: %s" % directory)
    locked: Dict[str, Set[str]] = {}
    for path in lock_paths:
        locked.update(read_lock(path))
    required = set(read_lock(lock_paths[0]))
    problems = check(locked, required, directory)
    if problems:
        more = " (and %d more)" % (len(problems) - 1) if len(problems) > 1 else ""
        raise WheelhouseError("%s in %s%s" % (problems[0], directory, more))


def verify_and_extract_uv(lock_paths: Sequence[Path], directory: Path, dest: Path) -> None:
    """``verify``, unpacking uv meanwhile; uv lands at ``dest`` only if the wheelhouse passes."""
    wheels = sorted(directory.glob("uv-*.whl"))
    if not wheels:
        raise WheelhouseError("no uv wheel in %s" % directory)
    new_dirs = [d for d in [dest.parent, *dest.parent.parents] if not d.exists()]
    with ThreadPoolExecutor(max_workers=1) as pool:
        unpacked = pool.submit(_unpack_uv, wheels[0], dest.parent)
        try:
            verify(lock_paths, directory)
        except BaseException:
            _discard(unpacked, new_dirs)
            raise
        os.replace(unpacked.result(), str(dest))


def _discard(unpacked, new_dirs: List[Path]) -> None:
    """Undo an unpacking: its file and the directories it created."""
    try:
        os.unlink(unpacked.result())
    except (OSError, WheelhouseError, zipfile.BadZipFile):
        pass
    for directory in new_dirs:  # deepest first
        try:
            directory.rmdir()
        except OSError:
            pass


def extract_uv(wheel: Path, dest: Path) -> None:
    """Unpack the ``uv`` binary of uv's wheel to ``dest``, atomically."""
    os.replace(_unpack_uv(wheel, dest.parent), str(dest))


def _unpack_uv(wheel: Path, directory: Path) -> str:
    """The ``uv`` binary of uv's wheel, unpacked to a temporary file in ``directory``."""
    with zipfile.ZipFile(str(wheel)) as archive:
        members = [m for m in archive.namelist() if m.endswith(".data/scripts/uv")]
        if len(members) != 1:
            raise WheelhouseError("no uv binary in %s" % wheel.name)
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".uv-", dir=str(directory))
        try:
            with os.fdopen(fd, "wb") as out, archive.open(members[0]) as src:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    out.write(block)
            os.chmod(tmp, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        except BaseException:
            os.unlink(tmp)
            raise
    return tmp


def download_command(python: str, lock: Path, version: str, directory: Path) -> List[str]:
    """The portable ``pip download`` that fetches the node's wheels, not the build host's."""
    tag = "cp" + version.replace(".", "")
    command = [python, "-m", "pip", "download", "--only-binary=:all:", "--no-deps"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += ["--python-version", version, "--implementation", "cp", "--abi", tag]
    return command + ["--require-hashes", "-d", str(directory), "-r", str(lock)]


def download(python: str, locks: Sequence[Path], version: str, directory: Path) -> None:
    """Fill ``directory`` with the wheels of ``locks`` for a Linux x86_64 node."""
    directory.mkdir(parents=True, exist_ok=True)
    for lock in locks:
        subprocess.run(download_command(python, lock, version, directory), check=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wheelhouse.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify_cmd = commands.add_parser("verify", help="check a wheelhouse against the locks")
    verify_cmd.add_argument("--lock", action="append", type=Path, required=True)
    verify_cmd.add_argument("--extract-uv", type=Path, metavar="DEST", help="unpack uv here too")
    verify_cmd.add_argument("directory", type=Path)
    extract = commands.add_parser("extract-uv", help="unpack uv from its wheel")
    extract.add_argument("wheel", type=Path)
    extract.add_argument("dest", type=Path)
    fetch = commands.add_parser("download", help="build a wheelhouse for the nodes")
    fetch.add_argument("--lock", action="append", type=Path, required=True)
    fetch.add_argument("--python-version", default="3.8")
    fetch.add_argument("--python", default=sys.executable, help="whose pip downloads")
    fetch.add_argument("directory", type=Path)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; 0 on success, 1 when the wheelhouse is refused."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "verify" and args.extract_uv:
            verify_and_extract_uv(args.lock, args.directory, args.extract_uv)
        elif args.command == "verify":
            verify(args.lock, args.directory)
        elif args.command == "extract-uv":
            extract_uv(args.wheel, args.dest)
        else:
            download(args.python, args.lock, args.python_version, args.directory)
    except (WheelhouseError, OSError, zipfile.BadZipFile, subprocess.CalledProcessError) as exc:
        print("wheelhouse: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
