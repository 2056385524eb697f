"""A handler author's install: ``bash bootstrap/devenv.sh`` for real (the nodes' pins, the
emulators, the pytest plugin, the worker from this checkout), what plain pip does with the
lock files, and the ranges in pyproject.toml against the locks."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import REPO

VERSION = "%d.%d" % sys.version_info[:2]
TAG = "py" + VERSION.replace(".", "")
LOCK = REPO / "locks" / f"{TAG}.txt"
DEV_LOCK = REPO / "locks" / f"dev-{TAG}.txt"


def pins(lock: Path):
    return dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", lock.read_text(), re.MULTILINE))


def devenv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "bootstrap" / "devenv.sh"), *args],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def dev_venv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("devenv") / "dev"
    requirements = folder.parent / "requirements.txt"
    requirements.write_text("tabulate==0.9.0\n")
    result = devenv("--python", VERSION, "--venv", str(folder), "-r", str(requirements))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ready: {folder} (Python {VERSION}, the nodes' pins of locks/{TAG}.txt)" \
        in result.stdout
    return folder


def in_venv(folder: Path, code: str) -> str:
    result = subprocess.run([str(folder / "bin" / "python"), "-c", code],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_devenv_installs_exactly_the_nodes_pins(dev_venv):
    installed = in_venv(dev_venv, "from importlib.metadata import distributions as d\n"
                                  "for x in d(): print(x.metadata['Name'].lower(), x.version)")
    have = dict(line.split() for line in installed.splitlines())
    have = {name.replace("_", "-"): version for name, version in have.items()}
    for name, version in pins(LOCK).items():
        assert have.get(name) == version, (name, have.get(name), version)
    assert have["tabulate"] == "0.9.0"  # the project's own requirement


def test_devenv_has_the_emulators_the_plugin_and_this_checkout(dev_venv):
    out = in_venv(dev_venv, "import trustme, pytest, worker\n"
                            "from importlib.metadata import entry_points\n"
                            "eps = entry_points()\n"
                            "group = eps.select(group='pytest11') if hasattr(eps, 'select') "
                            "else eps['pytest11']\n"
                            "print(worker.__file__)\n"
                            "print(sorted(e.value for e in group))")
    where, plugins = out.splitlines()
    assert where == str(REPO / "worker" / "__init__.py")  # editable: this checkout's code
    assert "worker.testing" in plugins
    help_text = subprocess.run([str(dev_venv / "bin" / "python"), "-m", "worker", "emulate",
                                "--help"], capture_output=True, text=True).stdout
    assert "--load-dir DIR" in help_text


def test_devenv_rerun_is_a_no_op_and_a_venv_of_another_python_is_refused(dev_venv):
    again = devenv("--python", VERSION, "--venv", str(dev_venv), "-r",
                   str(dev_venv.parent / "requirements.txt"))
    assert again.returncode == 0 and f"{dev_venv} is up to date" in again.stdout
    other = "3.12" if VERSION == "3.8" else "3.8"
    refused = devenv("--python", other, "--venv", str(dev_venv))
    assert refused.returncode == 2
    assert refused.stderr == (f"devenv: {dev_venv} is a Python {VERSION} venv; remove it or "
                              "choose another --venv\n")
    assert devenv("--python", "3.9").returncode == 2


def test_plain_pip_installs_the_locks_from_23_3_and_older_pips_with_no_deps(tmp_path):
    """docs/dependencies.md, "Installing a lock": the venv's own pip (the lock's, >= 23.3) takes
    the dev lock in hash mode as it is; the pip a new Python 3.8 venv brings (23.0) refuses
    the 3.8 lock, whose PyJWT is not the newest (it resolves msal's ``PyJWT[crypto]`` on its
    own), unless --no-deps."""
    command = ["install", "--dry-run", "--quiet", "--ignore-installed", "--require-hashes",
               "-r", str(DEV_LOCK)]
    current = subprocess.run([sys.executable, "-m", "pip", *command], capture_output=True,
                             text=True, timeout=900)
    assert current.returncode == 0, current.stderr
    venv.create(str(tmp_path / "v"), with_pip=True)
    pip = [str(tmp_path / "v" / "bin" / "python"), "-m", "pip"]
    bundled = subprocess.run([*pip, "--version"], capture_output=True, text=True).stdout.split()[1]
    if VERSION != "3.8" or tuple(int(p) for p in bundled.split(".")[:2]) >= (23, 3):
        pytest.skip(f"the refusal is of Python 3.8's lock by pip < 23.3 (here {VERSION}, "
                    f"pip {bundled})")
    refused = subprocess.run([*pip, *command], capture_output=True, text=True, timeout=900)
    assert refused.returncode != 0
    assert "must have their versions pinned" in refused.stderr
    assert "PyJWT[crypto]" in refused.stderr
    no_deps = subprocess.run([*pip, *command, "--no-deps"], capture_output=True, text=True,
                             timeout=900)
    assert no_deps.returncode == 0, no_deps.stderr


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_the_doctor_checks_every_runtime_dependency():
    from packaging.requirements import Requirement

    from worker.doctor import RUNTIME_MODULES

    project = pyproject()
    assert {Requirement(r).name for r in project["dependencies"]} == {
        dist for _, dist in RUNTIME_MODULES}


def test_every_lock_pin_lies_in_its_pyproject_range():
    """The ranges are what CI tests: each lock (its low and high end) must satisfy them."""
    from packaging.requirements import Requirement

    project = pyproject()
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    for lock in ("py38", "py312"):
        locked = pins(REPO / "locks" / f"dev-{lock}.txt")
        python = "%s.%s" % (lock[2], lock[3:])
        for requirement in requirements:
            if requirement.marker and not requirement.marker.evaluate(
                    {"python_version": python}):
                continue
            version = locked[requirement.name]
            assert requirement.specifier.contains(version), (lock, requirement, version)
            assert "<" in str(requirement.specifier), f"{requirement} has no upper bound"
    from packaging.version import Version

    node38 = pins(REPO / "locks" / "py38.txt")
    for requirement in (Requirement(r) for r in project["dependencies"]):
        low = next(s.version for s in requirement.specifier if s.operator == ">=")
        assert Version(low) == Version(node38[requirement.name]), requirement


def test_devenv_help_is_the_script_s_comment_block_and_nothing_more():
    shown = devenv("--help")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("A handler author's environment")
    assert lines[-1] == "7 an install failed."  # not the first line of code after the block
    assert not any(line.startswith(("#", "set ")) for line in lines)
