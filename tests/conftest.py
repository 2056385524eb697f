"""Session fixtures shared by test modules: the application package built from examples/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Wheels downloaded by package builds, kept across test runs (no network on reruns).
PACKAGE_CACHE = REPO / ".ci-venvs" / "package-wheels"


def build(project: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    """``python -m worker package PROJECT --out OUT`` with the suite's wheel cache."""
    command: List[str] = [sys.executable, "-m", "worker", "package", str(project), "--out",
                          str(out), "--cache-dir", str(PACKAGE_CACHE), *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def example_package(tmp_path_factory) -> Path:
    """examples/ built into an application package, once per session."""
    return _example_package(tmp_path_factory, "3.8")


@pytest.fixture(scope="session")
def example_package_312(tmp_path_factory) -> Path:
    """The same for Python 3.12 nodes (Ubuntu 24.04): ``--python 3.12``."""
    return _example_package(tmp_path_factory, "3.12")


def _example_package(tmp_path_factory, python: str) -> Path:
    out = tmp_path_factory.mktemp("package") / "examples.zip"
    result = build(REPO / "examples", out, *(["--python", python] if python != "3.8" else []))
    assert result.returncode == 0, result.stderr
    (out.parent / "stdout.txt").write_text(result.stdout)
    return out


@pytest.fixture
def env_file_environ(emulators, emulator_filesystem, monkeypatch):
    """This process's environment as ``emulate``'s env file sets it (the App Service identity
    variables included), nothing else of Azure's: what a client of the emulators sees."""
    from worker.emulators import CLEARED_VARIABLES

    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = emulators.environment(filesystem=emulator_filesystem, app_service=True)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
