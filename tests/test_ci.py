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
