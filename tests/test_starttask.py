"""starttask.sh, run for real in temporary prefixes with the pyenv Pythons 3.8 and 3.12 (standing
in for Ubuntu's: deadsnakes' python3.8 on 22.04, the distribution's python3.12 on 24.04) and
their locks.

The 3.8 wheelhouse (about 100 MB from PyPI) is downloaded once and kept in
.ci-venvs/wheelhouse-py38-<hash of lock and tools>, the 3.12 one in the package builds' cache
(.ci-venvs/package-wheels), so reruns need no network; the worker's own wheel is built fresh
each session. The apt paths (Ubuntu's own python3.12 with python3.12-venv, the deadsnakes PPA
for 3.8) are covered by the dry-run plan: this machine is Debian, where neither applies, and
its apt-cache is replaced by a stand-in that answers as Ubuntu's does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
STARTTASK = REPO / "starttask.sh"
LOCK = REPO / "locks" / "py38.txt"
TOOLS = REPO / "bootstrap" / "tools.txt"
PYENV = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv")))
sys.path.insert(0, str(REPO / "bootstrap"))

import wheelhouse  # noqa: E402
from conftest import PACKAGE_CACHE  # noqa: E402

from worker.deploy import lockfile  # noqa: E402
from worker.deploy.wheels import collect  # noqa: E402

LOCK312 = REPO / "locks" / "py312.txt"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
STEP_DONE = re.compile(r"^\S+Z step (\S+): done in (\d+\.\d{3})s$", re.M)


def pyenv_python(version: str) -> Path:
    found = sorted(PYENV.glob("versions/%s.*/bin/python%s" % (version, version)))
    if not found:
        pytest.skip("needs a pyenv Python %s (%s/versions/%s.*)" % (version, PYENV, version))
    return found[-1]


@pytest.fixture(scope="session")
def python38() -> Path:
    return pyenv_python("3.8")


@pytest.fixture(scope="session")
def python312() -> Path:
    return pyenv_python("3.12")


@pytest.fixture(scope="session")
def cached_wheelhouse(python38: Path) -> Path:
    """The node wheels for the 3.8 lock and tools, downloaded once per lock version."""
    key = hashlib.sha256(LOCK.read_bytes() + TOOLS.read_bytes()).hexdigest()[:12]
    cache = REPO / ".ci-venvs" / ("wheelhouse-py38-" + key)
    if not cache.is_dir():
        partial = cache.with_name(cache.name + ".partial-%d" % os.getpid())
        wheelhouse.download(str(python38), [LOCK, TOOLS], "3.8", partial)
        partial.rename(cache)
    return cache


@pytest.fixture(scope="session")
def wheels(cached_wheelhouse: Path, tmp_path_factory) -> Path:
    """A session wheelhouse: the cached wheels plus the worker wheel built from this checkout."""
    return session_wheelhouse(list(cached_wheelhouse.glob("*.whl")), tmp_path_factory)


@pytest.fixture(scope="session")
def wheels312(python312: Path, tmp_path_factory) -> Path:
    """The same for the 3.12 lock, from the package builds' wheel cache (shared with the
    3.12 package tests: one download)."""
    pins = lockfile.parse(LOCK312.read_text()) + lockfile.parse(TOOLS.read_text())
    return session_wheelhouse(collect(pins, "3.12", PACKAGE_CACHE, wheelhouse),
                              tmp_path_factory)


def session_wheelhouse(cached: List[Path], tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    for wheel in cached:
        link_or_copy(wheel, directory / wheel.name)
    uv = tmp_path_factory.mktemp("uv") / "uv"
    wheelhouse.extract_uv(next(directory.glob("uv-*.whl")), uv)
    subprocess.run(
        [str(uv), "build", "--quiet", "--wheel", "--out-dir", str(directory), str(REPO)],
        check=True,
    )
    return directory


def link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(str(source), str(dest))
    except OSError:
        shutil.copy2(str(source), str(dest))


def node_env(root: Path, wheels: Optional[Path], **extra: str) -> Dict[str, str]:
    """A bare environment, as on a node: no PIP_/UV_ settings, no shims on PATH."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root.parent),
        "PYENV_ROOT": str(PYENV),
        "WORKER_ENV_ROOT": str(root),
        "LANG": "C.UTF-8",
    }
    if wheels is not None:
        env["WORKER_WHEELHOUSE"] = str(wheels)
    env.update(extra)
    return env


def starttask(env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(STARTTASK), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def last_stderr_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def published(root: Path) -> str:
    return os.readlink(str(root / "venv"))


def env_names(root: Path) -> List[str]:
    return sorted(p.name for p in (root / "envs").iterdir())


def changed_lock(tmp_path: Path) -> Path:
    """The same pins under a new hash: what a lock update looks like to the stamp."""
    lock = tmp_path / "py38.txt"
    lock.write_text(LOCK.read_text() + "# changed\n")
    return lock


def assert_works(root: Path) -> None:
    python = root / "venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", "import worker, duckdb, pyarrow; print(worker.__version__)"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0.1.0"


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory, wheels: Path):
    """One environment built cold, found through pyenv, shared by the tests that keep it."""
    root = tmp_path_factory.mktemp("node") / "batch-worker"
    result = starttask(node_env(root, wheels))
    assert result.returncode == 0, result.stderr
    return root, result


def test_cold_run_finds_pyenv_python_and_installs_from_the_wheelhouse(provisioned, python38):
    root, result = provisioned
    assert "using %s (Python 3.8." % python38 in result.stdout
    assert "--require-hashes --no-deps --no-index --find-links" in result.stdout
    assert "doctor: all checks passed" in result.stdout
    assert_works(root)
    stamp = (root / "venv" / ".stamp").read_text().splitlines()
    assert len(stamp[0]) == 64 and "python=Python 3.8." in stamp[1]


def test_a_nodes_environment_says_where_the_emulators_and_pytest_live(provisioned, tmp_path):
    """A node's environment holds the runtime only: emulate is one line naming the
    development environment (not a ModuleNotFoundError traceback), and init says so too."""
    root, _ = provisioned
    python = str(root / "venv" / "bin" / "python")
    emulate = subprocess.run([python, "-m", "worker", "emulate"], capture_output=True,
                             text=True, cwd=str(tmp_path), timeout=60)
    assert emulate.returncode == 2
    assert emulate.stderr.startswith("emulate: the emulators need trustme, which this Python "
                                      "environment lacks")
    assert "bash bootstrap/devenv.sh" in emulate.stderr and "Traceback" not in emulate.stderr
    init = subprocess.run([python, "-m", "worker", "init", str(tmp_path / "p")],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=60)
    assert init.returncode == 0, init.stderr
    assert "note: this Python environment has no pytest or no emulators" in init.stdout


def test_bytecode_covers_what_tasks_import_and_not_the_test_suites(provisioned):
    root, result = provisioned
    site = root / "venv" / "lib" / "python3.8" / "site-packages"
    for package in ("pyarrow", "azure/storage/blob", "worker"):
        assert list((site / package / "__pycache__").glob("__init__.cpython-38.pyc")), package
    assert list((site / "pyarrow" / "tests").glob("*.py"))
    assert not (site / "pyarrow" / "tests" / "__pycache__").exists()
    assert re.search(r"bytecode: compiled \d+ files, 0 skipped", result.stdout)


def test_log_lines_are_utc_and_every_step_is_timed(provisioned):
    _, result = provisioned
    lines = [line for line in result.stdout.splitlines() if LOG_LINE.match(line)]
    assert lines and lines[0].endswith("step config: start")
    steps = [name for name, _ in STEP_DONE.findall(result.stdout)]
    assert steps == [
        "config",
        "python",
        "stamp",
        "wheelhouse",
        "lock",
        "prepare",
        "installer",
        "venv",
        "install",
        "bytecode",
        "verify",
        "publish",
        "prune",
        "tokens",
    ]


def test_rerun_is_the_fast_path(provisioned, wheels):
    root, _ = provisioned
    before = (published(root), env_names(root))
    start = time.monotonic()
    result = starttask(node_env(root, wheels))
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "up to date: %s/venv is py3.8-" % root in result.stdout
    assert seconds < 0.5
    assert (published(root), env_names(root)) == before


def test_the_node_gets_its_token_folder_on_every_start(provisioned, wheels, tmp_path):
    """The folder where a node's tasks share their tokens (worker/tokencache.py): made with
    mode 1733 (each task user may make its own private folder; nobody may list it), kept by
    a rerun, made again after a reboot finds it gone, and a symlink planted in its place
    (the shared folder is writable by tasks) is replaced, its target left alone."""
    root, _ = provisioned
    shared = tmp_path / "shared"
    env = node_env(root, wheels, AZ_BATCH_NODE_SHARED_DIR=str(shared))
    folder = shared / "batch-worker" / "tokens"
    first = starttask(env)
    assert first.returncode == 0, first.stderr
    assert "token folder: %s (mode 1733)" % folder in first.stdout
    assert stat.S_IMODE(folder.stat().st_mode) == 0o1733
    again = starttask(env)
    assert "token folder: %s is ready" % folder in again.stdout
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    folder.rmdir()
    folder.symlink_to(target)
    third = starttask(env)
    assert third.returncode == 0, third.stderr
    assert folder.is_dir() and not folder.is_symlink()
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    dry = starttask(node_env(root, wheels, AZ_BATCH_NODE_SHARED_DIR=str(tmp_path / "new")),
                    "--dry-run")
    assert "DRY-RUN: chmod 1733 -- %s/new/batch-worker/tokens" % tmp_path in dry.stdout
    assert not (tmp_path / "new").exists()


def test_tampered_wheel_is_refused_and_nothing_changes(provisioned, wheels, tmp_path):
    root, _ = provisioned
    tampered = tmp_path / "wheels"
    shutil.copytree(str(wheels), str(tampered), copy_function=link_or_copy)
    six = next(tampered.glob("six-*.whl"))
    data = six.read_bytes()
    six.unlink()
    six.write_bytes(data + b"\0")
    before = (published(root), env_names(root), sorted(os.listdir(str(root))))
    env = node_env(root, tampered, WORKER_LOCK_FILE=str(changed_lock(tmp_path)))
    result = starttask(env)
    assert result.returncode == 6
    assert last_stderr_line(result).endswith(
        "FAILED step=wheelhouse exit=6: wheelhouse refused, nothing changed: hash mismatch: "
        "%s is not the file the lock pins in %s" % (six.name, tampered)
    )
    assert (published(root), env_names(root), sorted(os.listdir(str(root)))) == before
    assert_works(root)


def test_tampered_wheel_on_a_fresh_node_leaves_no_trace(wheels, tmp_path):
    tampered = tmp_path / "wheels"
    shutil.copytree(str(wheels), str(tampered), copy_function=link_or_copy)
    duckdb = next(tampered.glob("duckdb-*.whl"))
    data = duckdb.read_bytes()
    duckdb.unlink()
    duckdb.write_bytes(data[:-1])
    result = starttask(node_env(tmp_path / "root", tampered))
    assert result.returncode == 6
    assert "hash mismatch: %s" % duckdb.name in last_stderr_line(result)
    assert not (tmp_path / "root").exists()  # uv, unpacked meanwhile, was thrown away too


def test_missing_python_is_one_clear_line(tmp_path):
    env = node_env(
        tmp_path / "root",
        None,
        PYENV_ROOT=str(tmp_path / "no-pyenv"),
        WORKER_OS_RELEASE=str(os_release(tmp_path, "debian")),
    )
    result = starttask(env)
    assert result.returncode == 3
    assert last_stderr_line(result).endswith(
        "FAILED step=python exit=3: no Python 3.8 found (tried python3.8 on PATH, "
        "%s/no-pyenv/versions/3.8.*, apt (Ubuntu only; this is debian)); "
        "install python3.8 or set WORKER_PYTHON=/path/to/python3.8" % tmp_path
    )
    assert not (tmp_path / "root").exists()


def test_explicit_python_of_the_wrong_version_is_refused(tmp_path):
    python312 = sorted(PYENV.glob("versions/3.12.*/bin/python3.12"))
    if not python312:
        pytest.skip("needs a pyenv Python 3.12")
    result = starttask(node_env(tmp_path / "root", None, WORKER_PYTHON=str(python312[-1])))
    assert result.returncode == 3
    assert last_stderr_line(result).endswith(
        "FAILED step=python exit=3: WORKER_PYTHON=%s is not a working Python 3.8; "
        "fix or unset it" % python312[-1]
    )


def os_release(tmp_path: Path, distro: str, codename: str = "jammy") -> Path:
    path = tmp_path / "os-release"
    path.write_text('ID=%s\nVERSION_CODENAME="%s"\n' % (distro, codename))
    return path


def ubuntu_apt_cache(tmp_path: Path, candidate: str) -> str:
    """A folder with a stand-in ``apt-cache``, answering ``policy`` as Ubuntu's does for a
    package its archive has (``candidate`` a version) or lacks (``(none)``): this machine is
    Debian, whose own answer says nothing of Ubuntu. The start task only reads it."""
    folder = tmp_path / "ubuntu-bin"
    folder.mkdir()
    script = folder / "apt-cache"
    script.write_text("#!/bin/sh\nprintf '%%s:\\n  Installed: (none)\\n  Candidate: %s\\n' \"$2\"\n"
                      % candidate)
    script.chmod(0o755)
    return str(folder)


def dry_run_plan(result: subprocess.CompletedProcess) -> List[str]:
    return [line[len("DRY-RUN: "):] for line in result.stdout.splitlines()
            if line.startswith("DRY-RUN: ")]


APT = "env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 "


def test_dry_run_plans_the_deadsnakes_path_and_changes_nothing(tmp_path, wheels):
    root = tmp_path / "root"
    env = node_env(
        root,
        wheels,
        PATH="%s:/usr/bin:/bin" % ubuntu_apt_cache(tmp_path, "(none)"),
        PYENV_ROOT=str(tmp_path / "no-pyenv"),
        WORKER_OS_RELEASE=str(os_release(tmp_path, "ubuntu")),
        WORKER_APT_PACKAGES="surely-not-installed-pkg",
    )
    result = starttask(env, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "python3.8 is not in this release's archive: from the deadsnakes PPA" in result.stdout
    plan = dry_run_plan(result)
    assert plan[0] == "install -d -m 0755 /etc/apt/keyrings"
    assert plan[1].startswith("curl -fsSL --max-time 60 -o /tmp/deadsnakes-")
    assert "0xF23C5A6CF475977595C89F51BA6932366A755776" in plan[1]
    assert plan[3].startswith("gpg --batch --yes --dearmor -o /etc/apt/keyrings/deadsnakes.gpg")
    assert plan[5] == (
        "write_file /etc/apt/sources.list.d/deadsnakes.list "
        "deb\\ \\[signed-by=/etc/apt/keyrings/deadsnakes.gpg\\]\\ "
        "https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu\\ jammy\\ main"
    )
    assert plan[6:9] == [
        APT + "update",
        APT + "install --no-install-recommends python3.8 python3.8-venv",
        APT + "install --no-install-recommends surely-not-installed-pkg",
    ]
    assert not any("apt-key" in line for line in plan)
    assert any(line.endswith("-m worker doctor --offline") for line in plan)
    assert plan[-1] == "mv -fT -- %s/venv.new %s/venv" % (root, root)
    assert not root.exists()


def test_dry_run_picks_the_lock_by_version_and_the_root_on_batch(tmp_path):
    env = node_env(tmp_path / "root", None, WORKER_PYTHON_VERSION="3.12")
    del env["WORKER_ENV_ROOT"]
    env["AZ_BATCH_NODE_SHARED_DIR"] = str(tmp_path / "shared")
    result = starttask(env, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "env root %s/shared/batch-worker;" % tmp_path in result.stdout
    assert "lock %s" % (REPO / "locks" / "py312.txt") in result.stdout
    assert re.search(r"^\S+Z using /\S+/python3\.12 \(Python 3\.12\.", result.stdout, re.M)


# -- Python 3.12, as on Ubuntu 24.04 ----------------------------------------------------------

def distribution_python312(tmp_path: Path, python312: Path) -> Path:
    """A Python 3.12 as Ubuntu 24.04's image has it: python3.12 without python3.12-venv,
    whose ensurepip Debian and Ubuntu ship apart. Made of pyenv's 3.12: its binary under
    another prefix whose standard library lacks ensurepip."""
    prefix = tmp_path / "usr"
    (prefix / "bin").mkdir(parents=True)
    link_or_copy(python312, prefix / "bin" / "python3.12")
    stdlib = prefix / "lib" / "python3.12"
    stdlib.mkdir(parents=True)
    for entry in (python312.parent.parent / "lib" / "python3.12").iterdir():
        if entry.name != "ensurepip":
            (stdlib / entry.name).symlink_to(entry)
    return prefix / "bin" / "python3.12"


@pytest.fixture(scope="module")
def provisioned312(tmp_path_factory, wheels312: Path):
    """A 3.12 environment built cold from its own lock, the Python found through pyenv."""
    root = tmp_path_factory.mktemp("node312") / "batch-worker"
    result = starttask(node_env(root, wheels312, WORKER_PYTHON_VERSION="3.12"))
    assert result.returncode == 0, result.stderr
    return root, result


def test_312_cold_run_provisions_its_own_lock(provisioned312, python312):
    root, result = provisioned312
    assert "using %s (Python 3.12." % python312 in result.stdout
    assert "python 3.12; env root %s; lock %s" % (root, LOCK312) in result.stdout
    assert "doctor: all checks passed" in result.stdout
    assert published(root).startswith("envs/py3.12-")
    out = subprocess.run([str(root / "venv" / "bin" / "python"), "-c",
                          "import sys, worker, duckdb, pyarrow; "
                          "print(sys.version_info[:2], duckdb.__version__, pyarrow.__version__)"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    pins = {pin.name: pin.version for pin in lockfile.parse(LOCK312.read_text())}
    assert out.split() == ["(3,", "12)", pins["duckdb"], pins["pyarrow"]]
    site = root / "venv" / "lib" / "python3.12" / "site-packages"
    assert list((site / "worker" / "__pycache__").glob("__init__.cpython-312.pyc"))
    assert "python=Python 3.12." in (root / "venv" / ".stamp").read_text().splitlines()[1]


def test_312_rerun_is_the_fast_path(provisioned312, wheels312):
    root, _ = provisioned312
    before = (published(root), env_names(root))
    result = starttask(node_env(root, wheels312, WORKER_PYTHON_VERSION="3.12"))
    assert result.returncode == 0, result.stderr
    assert "up to date: %s/venv is py3.12-" % root in result.stdout
    assert (published(root), env_names(root)) == before


def test_a_python_without_ensurepip_is_passed_over(tmp_path, python312):
    """The distribution's python3.12 on PATH lacks ensurepip: pyenv's, which has it, is used."""
    distro = distribution_python312(tmp_path, python312)
    env = node_env(tmp_path / "root", None, WORKER_PYTHON_VERSION="3.12",
                   PATH="%s:/usr/bin:/bin" % distro.parent)
    result = starttask(env, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "using %s (Python 3.12." % python312 in result.stdout


def test_only_a_python_without_ensurepip_names_the_venv_package(tmp_path, python312):
    distro = distribution_python312(tmp_path, python312)
    env = node_env(tmp_path / "root", None, WORKER_PYTHON_VERSION="3.12",
                   PATH="%s:/usr/bin:/bin" % distro.parent,
                   PYENV_ROOT=str(tmp_path / "no-pyenv"),
                   WORKER_OS_RELEASE=str(os_release(tmp_path, "debian", "bookworm")))
    result = starttask(env)
    assert result.returncode == 3
    assert last_stderr_line(result).endswith(
        "FAILED step=python exit=3: no Python 3.12 that can make a venv found (tried python3.12 "
        "on PATH, %s/no-pyenv/versions/3.12.*, apt (Ubuntu only; this is debian); %s has no "
        "ensurepip); install python3.12-venv or set WORKER_PYTHON=/path/to/python3.12"
        % (tmp_path, distro))
    explicit = starttask(dict(env, WORKER_PYTHON=str(distro)))
    assert explicit.returncode == 3
    assert last_stderr_line(explicit).endswith(
        "FAILED step=python exit=3: WORKER_PYTHON=%s cannot make a venv (it has no "
        "ensurepip); install python3.12-venv, or unset WORKER_PYTHON" % distro)
    assert not (tmp_path / "root").exists()


def test_dry_run_on_ubuntu_24_04_plans_the_distributions_python_and_its_venv(
        tmp_path, python312):
    """Ubuntu 24.04's own python3.12, with python3.12-venv: no PPA, no key."""
    distro = distribution_python312(tmp_path, python312)
    root = tmp_path / "root"
    env = node_env(root, None, WORKER_PYTHON_VERSION="3.12",
                   PATH="%s:%s:/usr/bin:/bin" % (ubuntu_apt_cache(tmp_path, "3.12.3-1ubuntu0.8"),
                                                 distro.parent),
                   PYENV_ROOT=str(tmp_path / "no-pyenv"),
                   WORKER_OS_RELEASE=str(os_release(tmp_path, "ubuntu", "noble")))
    result = starttask(env, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "python3.12 from Ubuntu's own archive" in result.stdout
    plan = dry_run_plan(result)
    assert plan[:2] == [APT + "update",
                        APT + "install --no-install-recommends python3.12 python3.12-venv"]
    assert not [line for line in plan if "deadsnakes" in line or "keyrings" in line]
    assert plan[3].startswith("/usr/bin/python3.12 -m venv %s/envs/py3.12-" % root)
    assert plan[-5].endswith("/lib/python3.12/site-packages")  # the bytecode step
    assert plan[-1] == "mv -fT -- %s/venv.new %s/venv" % (root, root)
    assert not root.exists()


def test_a_python_without_a_lock_names_the_locked_ones(tmp_path):
    result = starttask(node_env(tmp_path / "root", None, WORKER_PYTHON_VERSION="3.11"))
    assert result.returncode == 2
    assert last_stderr_line(result).endswith(
        "FAILED step=config exit=2: no lock for Python 3.11 (%s/locks/py311.txt): the worker is "
        "locked for 3.8, 3.12; set WORKER_PYTHON_VERSION to one of them (or WORKER_LOCK_FILE)"
        % REPO)


def test_a_run_that_cannot_get_the_lock_in_time_fails_with_exit_5(provisioned, wheels, tmp_path):
    root, _ = provisioned
    env = node_env(
        root, wheels, WORKER_LOCK_FILE=str(changed_lock(tmp_path)), WORKER_WAIT_TIMEOUT="1"
    )
    with (root / ".lock").open() as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = starttask(env)
    assert result.returncode == 5
    assert last_stderr_line(result).endswith(
        "FAILED step=lock exit=5: another run held %s/.lock for more than 1s "
        "(WORKER_WAIT_TIMEOUT)" % root
    )
    assert_works(root)


def test_two_concurrent_runs_serialise_and_both_succeed(tmp_path, wheels):
    root = tmp_path / "root"
    runs = [
        subprocess.Popen(
            ["bash", str(STARTTASK)],
            env=node_env(root, wheels),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    stdout = "".join(out for out, _ in outputs)
    assert stdout.count("step venv: start") == 1
    assert "another run provisioned py3.8-" in stdout or stdout.count("up to date") == 1
    assert len(env_names(root)) == 1
    assert_works(root)


def test_killed_run_leaves_the_old_env_and_the_next_run_finishes(tmp_path, wheels):
    root = tmp_path / "root"
    assert starttask(node_env(root, wheels)).returncode == 0
    old = published(root)
    env = node_env(root, wheels, WORKER_LOCK_FILE=str(changed_lock(tmp_path)))
    run = subprocess.Popen(
        ["bash", str(STARTTASK)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    for line in run.stdout:
        if "step install: start" in line:
            time.sleep(0.5)
            os.killpg(run.pid, signal.SIGKILL)
            break
    run.wait(timeout=60)
    run.stdout.close()
    assert run.returncode == -signal.SIGKILL
    assert published(root) == old
    assert_works(root)
    partial = [name for name in env_names(root) if "envs/" + name != old]
    assert len(partial) == 1 and not (root / "envs" / partial[0] / ".stamp").exists()

    result = starttask(env)
    assert result.returncode == 0, result.stderr
    assert "removing the unfinished" in result.stdout
    assert published(root) == "envs/" + partial[0]
    assert env_names(root) == sorted([old[len("envs/") :], partial[0]])
    assert_works(root)


def test_pip_is_the_fallback_installer(tmp_path, wheels):
    root = tmp_path / "root"
    result = starttask(node_env(root, wheels, WORKER_INSTALLER="pip"))
    assert result.returncode == 0, result.stderr
    assert "installer: pip" in result.stdout
    assert "-m pip install --no-input --no-compile --only-binary=:all: --require-hashes" in result.stdout
    assert_works(root)


def test_without_a_wheelhouse_it_installs_from_the_index_and_builds_the_worker(tmp_path, wheels):
    """Off Batch, in a checkout: uv from PATH, the lock from PyPI, the worker from source."""
    tools = tmp_path / "bin"
    wheelhouse.extract_uv(next(wheels.glob("uv-*.whl")), tools / "uv")
    root = tmp_path / "root"
    env = node_env(root, None, PATH="%s:/usr/bin:/bin" % tools)
    for name in ("SSL_CERT_FILE", "UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        if name in os.environ:
            env[name] = os.environ[name]
    result = starttask(env)
    assert result.returncode == 0, result.stderr
    assert "wheelhouse none (package index)" in result.stdout
    assert "build --quiet --wheel" in result.stdout
    assert_works(root)


def test_bad_setting_is_a_config_error(tmp_path):
    result = starttask(node_env(tmp_path / "root", None, WORKER_INSTALLER="conda"))
    assert result.returncode == 2
    assert last_stderr_line(result).endswith(
        "FAILED step=config exit=2: WORKER_INSTALLER must be auto, uv or pip, got 'conda'"
    )


@pytest.mark.parametrize("node, other", [("3.8", "3.12"), ("3.12", "3.8")])
def test_the_lock_of_another_python_is_named_as_such(tmp_path, node, other):
    lock = REPO / "locks" / ("py%s.txt" % other.replace(".", ""))
    result = starttask(node_env(tmp_path / "root", None, WORKER_LOCK_FILE=str(lock),
                                WORKER_PYTHON_VERSION=node))
    assert result.returncode == 2
    assert last_stderr_line(result).endswith(
        f"FAILED step=config exit=2: {lock} is the lock for Python {other}, but this node "
        f"provisions Python {node}: set WORKER_LOCK_FILE to locks/py{node.replace('.', '')}.txt, "
        f"or WORKER_PYTHON_VERSION={other}")


def test_wheelhouse_verify_names_a_missing_wheel(wheels, tmp_path):
    partial = tmp_path / "wheels"
    partial.mkdir()
    for wheel in wheels.glob("*.whl"):
        if not wheel.name.startswith("duckdb-"):
            link_or_copy(wheel, partial / wheel.name)
    with pytest.raises(wheelhouse.WheelhouseError, match="^missing wheel: duckdb in "):
        wheelhouse.verify([LOCK, TOOLS], partial)


def test_lock_parsing_reads_every_pin_with_its_hashes():
    pins = wheelhouse.read_lock(LOCK)
    assert "duckdb" in pins and "typing-extensions" in pins
    assert all(hashes for hashes in pins.values())


def test_shell_is_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(
        [shellcheck, "-x", "starttask.sh", "task.sh", "bootstrap/lock.sh", "tests/run.sh",
         "examples/quickstart.sh", "examples/legacy/convert.sh", ".ci/run"],
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert result.returncode == 0, result.stdout
