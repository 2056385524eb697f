"""The deploy loop's commands end to end against the local Batch service, through the command
line (``worker.cli.main``) with nothing but the emulators' environment: ``deploy`` a fan-out
with a merge onto a 2-node pool, ``status`` showing a failed task's reason and the merge it
blocks, ``logs``, the input fixed and ``rerun --failed``, the job completing, ``results``
in three formats, and a second ``deploy`` that finds everything done.

The application package here is a small one whose launcher runs this checkout's worker
with the test's Python (the real package's launcher and start task are tested in
tests/test_package.py and tests/test_localbatch_node.py; the example pipeline's own package
goes through the whole loop in tests/test_deploy_examples.py). azure-batch 15 needs Python
>= 3.9: skipped on 3.8.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from deploy_support import make_loop

pytestmark = pytest.mark.skipif(sys.version_info < (3, 9),
                                reason="the deploy loop needs azure-batch 15 (Python >= 3.9)")

@pytest.fixture
def loop(batch_service, monkeypatch, tmp_path):
    return make_loop(batch_service, monkeypatch, tmp_path)


def test_deploy_watch_fail_fix_rerun_and_collect(loop, tmp_path):
    code, out, err = loop.cli("deploy")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "deploy: job loop1 on pool loop of Batch account %s" % (
        loop.env["AZURE_BATCH_ACCOUNT"])
    assert "  package  mini 1.0.0: there" in lines
    assert "  pool     loop: created" in lines
    assert "  items    .worker-jobs/loop1/items.json in %s: written, 4 item(s)" % (
        loop.env["WORKER_LAKE_URL"]) in lines
    assert "  job      loop1: created" in lines
    assert "  tasks    5: 5 added, 0 already there (1 requests)" in lines
    # the job looked for, created, its tasks, set to end; the package and the pool looked for,
    # the pool created
    assert "  requests 4 to the Batch account, 3 to its account plane, 0 for the package " \
           "upload" in lines
    assert json.loads(loop.read(".worker-jobs/loop1/items.json"))["task_ids"] == [
        "1", "2", "3", "4"]

    code, out, err = loop.cli("status", "loop1", "--watch", "--interval", "0.2")
    assert code == 40, out + err
    # the harness's line, after the exit code's meaning (the one attempt's, or its retry's
    # refusal to repeat it, by the node the retry ran on)
    failed = re.search(r"^task 3 failed: exit 4 \(bad input data, retrying will not help\): "
                       r"(\w+): (.*)$", out, re.MULTILINE)
    assert failed and failed.group(1) in ("PermanentError", "RepeatedFailure"), out
    assert "in/3.txt says bad: fix the file" in failed.group(2)
    # no node was lost: nothing requeued (the job's update at the end of deploy included)
    assert "  tasks 5: 1 active, 0 running, 3 succeeded, 1 failed, 0 requeued, 1 blocked by " \
           "failed tasks\n" in out
    assert out.rstrip().endswith("fix the cause, then python -m worker rerun loop1 --failed")

    code, out, _ = loop.cli("status", "loop1")  # without --watch: the same verdict
    assert code == 40 and "failed tasks:\n  3 (in/3.txt): exit 4 (" in out

    code, out, err = loop.cli("logs", "loop1", "3")
    assert code == 0, err
    assert "in/3.txt says bad: fix the file" in out.splitlines()[-1]

    loop.lake.seed_file(loop.filesystem, "in/3.txt", b"item3")
    rerun_while_disabled(loop)
    code, out, err = loop.cli("rerun", "loop1", "--failed")  # enables what it left disabled
    assert code == 0, err
    assert out == "enabled job loop1 again\nwatch it: python -m worker status loop1 --watch\n"
    code, out, err = loop.cli("status", "loop1", "--watch", "--interval", "0.2")
    assert code == 0, out + err
    assert "  tasks 5: 0 active, 0 running, 5 succeeded, 0 failed" in out
    assert out.rstrip().endswith("every task succeeded")
    assert loop.read("out/merged.txt") == b"ITEM1ITEM2ITEM3ITEM4"

    rows = {}
    for suffix in ("json", "csv", "parquet"):
        target = tmp_path / ("results." + suffix)
        code, out, err = loop.cli("results", "loop1", "--out", str(target))
        assert code == 0, err
        assert out == "wrote %s: 5 task(s) (records from lake)\n" % target
        rows[suffix] = target
    table = json.loads(rows["json"].read_text())
    assert [r["task_id"] for r in table] == ["1", "2", "3", "4", "merge"]
    three = table[2]
    assert (three["item"], three["status"], three["exit_code"]) == ("in/3.txt", "succeeded", 0)
    assert three["attempt"] >= 1 and three["source"] == "lake"
    assert three["return.text"] == "item3" and three["return.size.chars"] == 5
    assert table[4]["return.merged"] == "ITEM1ITEM2ITEM3ITEM4"
    import pyarrow.parquet as pq

    assert pq.read_table(str(rows["parquet"])).to_pylist()[2]["return.text"] == "item3"
    assert rows["csv"].read_text().splitlines()[0].startswith("task_id,item,state,status,")

    code, out, err = loop.cli("deploy")
    assert code == 0, err
    assert "  pool     loop: up to date" in out
    assert "  tasks    5: 0 added, 5 already there" in out


def rerun_while_disabled(loop) -> None:
    """``rerun`` deletes the harness's repeated-failure record from the task's node before it
    reactivates the task: seen here with the job disabled, so the task cannot run meanwhile,
    and the rerun stopped before it enables the job (as if interrupted there)."""
    from worker.deploy.cloud import files, rerun
    from worker.deploy.cloud.account import Clients, resolve

    clients = Clients(resolve())
    batch, where = clients.batch, clients.target.where()
    assert files.size(batch, "loop1", "3", ".worker-failure", where) is not None
    batch.begin_disable_job("loop1", {"disableTasks": "requeue"}, polling_interval=1).result()
    original = rerun._enable
    rerun._enable = lambda *a: None  # stop before the last step, as an interruption would
    try:
        assert rerun.rerun(clients, "loop1") == (["3"], True)
    finally:
        rerun._enable = original
    assert files.size(batch, "loop1", "3", ".worker-failure", where) is None
    assert batch.get_task("loop1", "3").state == "active"
    clients.close()


def test_status_of_a_job_that_does_not_exist_is_one_line_exit_2(loop):
    code, out, err = loop.cli("status", "nojob")
    assert code == 2 and out == ""
    assert err.startswith("status: error: reading job nojob: 404 JobNotFound: ")
    assert err.rstrip().endswith("there is no job nojob in account %s: check the id"
                                 % loop.env["AZURE_BATCH_ACCOUNT"])
    assert len(err.splitlines()) == 1


def test_rerun_without_a_choice_and_results_to_an_unknown_format_are_usage_errors(loop):
    code, _, err = loop.cli("rerun", "loop1")
    assert code == 2 and "say which tasks: --failed" in err
    code, _, err = loop.cli("results", "loop1", "--out", "x.xlsx")
    assert code == 2 and "results: error: --out x.xlsx: write .parquet, .csv or .json" in err


def test_the_shared_key_signs_when_asked(loop):
    code, out, err = loop.cli("status", "nojob", "--shared-key")
    assert code == 2 and "404 JobNotFound" in err
    loop.env["AZURE_BATCH_ACCESS_KEY"] = ""
    import os

    os.environ["AZURE_BATCH_ACCESS_KEY"] = "d3Jvbmc="
    code, out, err = loop.cli("status", "nojob", "--shared-key")
    assert code == 2
    assert "403 AuthenticationFailed" in err and "the shared key (AZURE_BATCH_ACCESS_KEY) " \
        "is not account %s's" % loop.env["AZURE_BATCH_ACCOUNT"] in err
