"""Every command's ``--help`` shows an example and the environment variables it reads."""

from __future__ import annotations

import re

import pytest
from support import TESTS_DIR, run_worker

COMMANDS = ["run", "exec", "doctor", "lake", "secrets", "package", "spec", "local-batch",
            "emulate", "init", "deploy", "status", "logs", "results", "rerun"]
SUBCOMMANDS = ["lake ls", "lake get", "lake put", "lake rm", "lake gc", "secrets set",
               "secrets get", "secrets ls", "secrets rm"]


@pytest.mark.parametrize("command", COMMANDS + SUBCOMMANDS)
def test_help_has_an_example_and_the_environment(command):
    proc = run_worker(*command.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert re.search(r"^examples?:\n  python -m worker " + command + "( |$)", text,
                     re.MULTILINE), text
    assert re.search(r"^environment\b", text, re.MULTILINE), text


def test_the_top_level_help_lists_every_command():
    text = run_worker("--help").stdout
    for command in COMMANDS:
        assert re.search(r"^    " + command + r"\s", text, re.MULTILINE), command


def test_run_help_names_every_variable_the_configuration_reads():
    source = (TESTS_DIR.parent / "worker" / "config.py").read_text()
    variables = set(re.findall(r'"(WORKER_[A-Z_]+)"', source))
    assert len(variables) >= 18
    text = run_worker("run", "--help").stdout
    missing = sorted(v for v in variables if v not in text)
    assert not missing, missing


def test_lake_help_names_the_variables_of_its_connection():
    text = run_worker("lake", "--help").stdout
    for name in ("WORKER_LAKE_URL", "WORKER_CLIENT_ID", "REQUESTS_CA_BUNDLE",
                 "WORKER_RETRY_TOTAL"):
        assert name in text
