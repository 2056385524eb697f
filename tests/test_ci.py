"""tests/run.sh's lint step: ruff, and ShellCheck over every shell script, run by the script
itself (not only by a test that skips without it), saying so when ShellCheck is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

RUFF = str(Path(sys.executable).parent / "ruff")


def lint(root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(root / "tests" / "run.sh"), "--lint"],
                          env=dict(os.environ, RUFF=RUFF, **env), capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_lint_runs_ruff_and_shellcheck_over_every_script():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run.sh: ruff check (target py38)" in result.stdout
    count = int(result.stdout.split("shellcheck: ")[1].split()[0])
    scripts = [p for p in REPO.rglob("*.sh") if not {".ci-venvs", ".worker", ".git"}
               & set(p.relative_to(REPO).parts)]
    assert count == len(scripts) + 1  # and .ci/run


def test_without_shellcheck_it_says_the_scripts_were_not_checked():
    result = lint(REPO, SHELLCHECK="/nonexistent/shellcheck")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shellcheck is not installed: the shell scripts were NOT checked" in result.stdout


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_a_script_shellcheck_finds_fault_with_fails_the_run(tmp_path):
    (tmp_path / "tests").mkdir()
    shutil.copy(REPO / "tests" / "run.sh", tmp_path / "tests" / "run.sh")
    (tmp_path / "bad.sh").write_text("#!/usr/bin/env bash\ncd $1\n")
    result = subprocess.run(["bash", str(tmp_path / "tests" / "run.sh"), "--lint"],
                            env=dict(os.environ, RUFF="true"), capture_output=True, text=True)
    assert result.returncode != 0
    assert "./bad.sh" in result.stdout and "SC2086" in result.stdout


def test_ci_runs_both_suites_with_the_host_changing_tests_opted_in(tmp_path):
    """.ci/run itself, with tests/run.sh replaced by one that records what it was given
    (shellcheck and ffmpeg are stand-ins on PATH, so .ci/run installs nothing)."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(str(REPO / ".ci" / "run"), str(tmp_path / ".ci" / "run"))
    (tmp_path / "tests").mkdir()
    record = tmp_path / "calls.txt"
    (tmp_path / "tests" / "run.sh").write_text(
        'echo "host=${WORKER_TEST_HOST_CHANGES:-} pythons=${WORKER_TEST_PYTHONS:-default} '
        'deps=${WORKER_TEST_DEPS:-locked}" >>%s\n' % record)
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("shellcheck", "ffmpeg"):
        (tools / name).write_text("#!/bin/sh\n")
        (tools / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_TEST_")}
    env["PATH"] = "%s:%s" % (tools, env.get("PATH", "/usr/bin:/bin"))
    result = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == [
        "host=1 pythons=default deps=locked", "host=1 pythons=3.12 deps=newest"]


def test_the_host_changing_tests_skip_unless_asked_and_say_how():
    """Without WORKER_TEST_HOST_CHANGES=1 the apt tests change nothing and name the variable."""
    env = {k: v for k, v in os.environ.items() if k != "WORKER_TEST_HOST_CHANGES"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         str(REPO / "tests" / "test_apt_repos.py"), "-k", "licence_variable or dry_run"],
        env=env, capture_output=True, text=True, cwd=str(REPO), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 skipped" in result.stdout
    assert ("installs and purges apt packages and writes /etc/apt on this machine: run with "
            "WORKER_TEST_HOST_CHANGES=1 to allow it (.ci/run does)") in result.stdout
