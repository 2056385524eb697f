"""The Batch command lines of worker.deploy.commandline, run by real bash against a stand-in
package whose task.sh and starttask.sh print the arguments they got (the real launcher and
worker are driven by tests/test_node.py)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from worker.deploy.commandline import (
    EXIT_NO_PACKAGE,
    package_variable,
    start_task_command_line,
    task_command_line,
)
from worker.deploy.errors import PackageUsageError

NASTY = [
    "run", "handlers.sales:daily", "--param", "date=2024-01-31",
    "--param", "note=it's \"quoted\" $HOME ${PATH} `id` $(id) \\ \\\\n ünï 日本 * ? [a] ~ ! #",
    "--param", "multi=line 1\nline 2\ttab", "--param", "empty=", "",
]


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    for script in ("task.sh", "starttask.sh"):
        (tmp_path / script).write_text('printf "%s:" "${0##*/}"; printf "%s\\0" "$@"\n')
    return tmp_path


def run(command_line: str, env: dict, shell: bool = False) -> subprocess.CompletedProcess:
    """As Batch runs it: split into words, no shell; or, to be safe, through one."""
    argv = ["/bin/sh", "-c", command_line] if shell else shlex.split(command_line)
    return subprocess.run(argv, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True)


def received(result: subprocess.CompletedProcess):
    script, _, rest = result.stdout.decode().partition(":")
    return script, rest.split("\0")[:-1]


def test_the_variable_flattens_dots_and_dashes_and_drops_the_default_version():
    assert package_variable("my-app", "1.0.0-rc.1") == "AZ_BATCH_APP_PACKAGE_my_app_1_0_0_rc_1"
    assert package_variable("SalesApp", None) == "AZ_BATCH_APP_PACKAGE_SalesApp"


@pytest.mark.parametrize("app,version", [("my app", "1"), ("a'b", "1"), ("x" * 65, "1"),
                                         ("app", "1.0;rm -rf"), ("app", ""), ("", "1")])
def test_names_batch_would_refuse_are_usage_errors(app, version):
    with pytest.raises(PackageUsageError) as caught:
        task_command_line(app, version, ["run", "m:f"])
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("shell", [False, True], ids=["split", "shell"])
@pytest.mark.parametrize("variable", ["AZ_BATCH_APP_PACKAGE_my_app_2_0",
                                      "AZ_BATCH_APP_PACKAGE_MY_APP_2_0",
                                      "AZ_BATCH_APP_PACKAGE_My_App_2_0",
                                      "AZ_BATCH_APP_PACKAGE_my_app"])
def test_every_argument_arrives_unchanged_whatever_the_variables_case(stand_in, variable, shell):
    result = run(task_command_line("My-App", "2.0", NASTY), {variable: str(stand_in)}, shell)
    assert result.returncode == 0, result.stderr
    assert received(result) == ("task.sh", NASTY)


def test_the_start_task_line_runs_starttask_sh_with_its_arguments(stand_in):
    result = run(start_task_command_line("my-app", None, ["--dry-run"]),
                 {"AZ_BATCH_APP_PACKAGE_MY_APP": str(stand_in)})
    assert result.returncode == 0, result.stderr
    assert received(result) == ("starttask.sh", ["--dry-run"])


def test_the_versioned_variable_wins_and_empty_ones_are_skipped(stand_in, tmp_path):
    env = {"AZ_BATCH_APP_PACKAGE_app": "/nonexistent", "AZ_BATCH_APP_PACKAGE_APP_1": "",
           "AZ_BATCH_APP_PACKAGE_app_1": str(stand_in), "AZ_BATCH_APP_PACKAGE_app_2": "/x"}
    result = run(task_command_line("app", "1", ["doctor"]), env)
    assert result.returncode == 0, result.stderr
    assert received(result) == ("task.sh", ["doctor"])


def test_without_its_variable_the_line_fails_with_exit_21_naming_it():
    result = run(task_command_line("app", "1", ["doctor"]), {"AZ_BATCH_APP_PACKAGE_app_2": "/x"})
    assert result.returncode == EXIT_NO_PACKAGE == 21
    assert result.stderr.decode() == (
        "worker-task: no AZ_BATCH_APP_PACKAGE_app_1 or AZ_BATCH_APP_PACKAGE_app variable on "
        "this node: the task needs application package app version 1 referenced by its pool or "
        "task\n")


def test_the_launchers_codes_are_task_sh_s_and_status_explains_them():
    """One table of the launcher's own codes (``LAUNCHER_MEANINGS``): task.sh's constant
    agrees with it, and ``status`` explains a task's exit 20 or 21 as the launcher's, not as
    the handler's own exit code (the docs' table: tests/test_docs.py)."""
    import re

    from worker.deploy.cloud.status import Failure, _why
    from worker.deploy.commandline import EXIT_PROVISION, LAUNCHER_MEANINGS

    script = (Path(__file__).resolve().parent.parent / "task.sh").read_text()
    assert re.search(r"\bEXIT_PROVISION=(\d+)", script).group(1) == str(EXIT_PROVISION)
    assert sorted(LAUNCHER_MEANINGS) == [20, 21]
    line = _why(Failure("1", "a", 21, "worker-task: no AZ_BATCH_APP_PACKAGE_app_1 ..."))
    assert line.startswith("exit 21 (the launcher's: no AZ_BATCH_APP_PACKAGE_* variable for "
                           "the package on the node: ")
    assert "own exit code" not in _why(Failure("1", "a", 20, "task.sh: ..."))
    assert "own exit code" in _why(Failure("1", "a", 22, "..."))
