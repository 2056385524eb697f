"""What ``status``, ``logs`` and ``results`` promise beyond the loop's main path, against the
local Batch service: a steady refresh is four requests whatever the job's size and the failed
tasks are listed once; ``logs --follow`` reads a growing file to its end; once the pool's
nodes are gone, ``results`` reads the records the harness copied to the lake (and says which
tasks have none), ``status`` takes a failed task's reason from there, and ``logs`` says the
node is gone.

azure-batch 15 needs Python >= 3.9: skipped on 3.8.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from deploy_support import make_loop
from support import wait_for

pytestmark = pytest.mark.skipif(sys.version_info < (3, 9),
                                reason="the deploy loop needs azure-batch 15 (Python >= 3.9)")


@pytest.fixture
def loop(batch_service, monkeypatch, tmp_path):
    return make_loop(batch_service, monkeypatch, tmp_path)


def clients():
    from worker.deploy.cloud.account import Clients, resolve

    return Clients(resolve())


def test_a_steady_refresh_is_four_requests_and_failures_are_listed_once(loop):
    from worker.deploy.cloud.status import JobView

    assert loop.cli("deploy", "--set", "pool.nodes=0")[0] == 0  # nothing runs
    own = clients()
    for task_id in ("1", "2"):
        own.batch.terminate_task("loop1", task_id)  # failed without running
    view = JobView(own, "loop1")
    counted = []
    for _ in range(3):
        before = own.requests["batch"]
        snap = view.refresh()
        counted.append(own.requests["batch"] - before)
    # job, counts, failed list + each failure's stderr.txt (a HEAD: it never ran), the
    # waiting tasks (blocked by the failures?), the pool (nothing runs); then job, counts, pool
    assert counted == [2 + 1 + 2 + 1 + 1, 3, 3]
    assert (snap.failed, snap.active, snap.total) == (2, 3, 5)
    assert snap.pool_note.startswith("pool loop: 0 node(s), steady")
    assert sorted(view.failures) == ["1", "2"]
    own.close()


def test_requeued_tasks_are_counted_while_they_run_and_over_all_once_ended(batch_service,
                                                                           monkeypatch,
                                                                           tmp_path):
    """Batch cannot filter tasks on their requeueCount: status counts it on the running
    tasks it lists each refresh, and over every task once the job's tasks have ended."""
    from azure.batch import models as m

    from worker.deploy.cloud.status import JobView

    for name, value in batch_service.environment().items():
        monkeypatch.setenv(name, value)
    own = clients()
    own.batch.create_pool(m.BatchPoolCreateOptions(
        id="p", vm_size="standard_d2a_v4", target_dedicated_nodes=1,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="x", sku="y"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    own.batch.create_job(m.BatchJobCreateOptions(id="j", pool_info=m.BatchPoolInfo(
        pool_id="p")))
    hold = "touch %s/run; while [ ! -e %s/go ]; do sleep 0.05; done" % (tmp_path, tmp_path)
    own.batch.create_task("j", m.BatchTaskCreateOptions(
        id="t", command_line="/bin/bash -c '%s'" % hold))
    wait_for(lambda: (tmp_path / "run").exists(), 120, "the task to run")
    own.batch.begin_disable_job("j", m.BatchJobDisableOptions(disable_tasks="requeue"),
                                polling_interval=0.1).result()  # requeued: not a retry
    (tmp_path / "run").unlink()
    own.batch.begin_enable_job("j", polling_interval=0.1).result()
    wait_for(lambda: (tmp_path / "run").exists(), 120, "the task to run again")
    view = JobView(own, "j")
    running = view.refresh()
    assert (running.running, running.requeued) == (1, 1)
    (tmp_path / "go").touch()
    wait_for(lambda: own.batch.get_task("j", "t").state == m.BatchTaskState.COMPLETED, 120,
             "the task to end")
    fresh = JobView(own, "j").refresh()  # a status of the ended job: every task listed
    assert (fresh.ended, fresh.succeeded, fresh.requeued) == (True, 1, 1)
    own.close()


def test_logs_follow_reads_the_file_as_it_grows_until_the_task_ends(loop, tmp_path):
    gate = tmp_path / "gate"
    loop.spec.write_text(loop.spec.read_text().replace(
        'items = { list = ["in/1.txt", "in/2.txt", "in/3.txt", "in/4.txt"] }',
        'items = { list = ["in/1.txt"] }').replace(
        'command = ["run", "handlers.deploy_loop:item", "--param", "path={item}"]',
        'command = ["run", "handlers.deploy_loop:slow", "--param", "path={item}", "--param", '
        '"gate=%s"]' % gate))
    assert loop.cli("deploy", "--set", "merge.command=[\"run\", \"handlers.deploy_loop:merge\","
                    " \"--param\", \"items_file={items_file}\"]")[0] == 0
    import threading

    threading.Timer(3.0, gate.touch).start()  # the handler waits for it, printing
    code, out, err = loop.cli("logs", "loop1", "1", "--stdout", "--follow", "--interval",
                              "0.2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "waiting for the gate" and lines[-1] == "through the gate"
    assert len(lines) >= 3  # it printed while it waited: more than one read


def test_without_nodes_results_read_the_lake_status_its_copy_and_logs_say_so(loop,
                                                                             monkeypatch):
    """The lake is the one the job's tasks wrote to (the job's own WORKER_LAKE_URL, from
    ``--set job.lake_url``), not the spec file's placeholder (a host that does not resolve)
    nor this shell's WORKER_LAKE_URL (here an empty file system: the records not there)."""
    lake_url = loop.env["WORKER_LAKE_URL"]
    loop.lake.seed_file(loop.filesystem, "in/3.txt", b"bad")
    loop.spec.write_text(loop.spec.read_text().replace("retries = 1", "retries = 0").replace(
        lake_url, "abfss://data@mydatalake.dfs.core.windows.net/"))
    monkeypatch.setenv("WORKER_LAKE_URL", "%s/%s" % (loop.lake.account_url,
                                                     loop.lake.new_filesystem("other")))
    lake = ["--set", "job.lake_url=" + lake_url]
    assert loop.cli("deploy", *lake)[0] == 0
    assert loop.cli("status", "loop1", "--watch", "--interval", "0.3")[0] == 40
    # the merge waits on the failed task: not finished, and not counted as failed
    code, out, err = loop.cli("results", "loop1")
    assert code == 0, err
    assert out.splitlines()[-1] == "5 task(s): 3 succeeded, 1 failed, 1 not finished"
    assert loop.cli("deploy", "--set", "pool.nodes=0", *lake)[0] == 0  # the nodes go
    own = clients()
    wait_for(lambda: not list(own.batch.list_nodes("loop")), 120, "the nodes to go")
    own.close()
    from worker.jobfiles import result_file

    _delete(result_file("loop1", "2"), lake_url)

    code, out, err = loop.cli("results", "loop1", "--out", "r.json")
    assert code == 0, err
    rows = {r["task_id"]: r for r in json.loads(Path("r.json").read_text())}
    assert [rows[t]["source"] for t in ("1", "2", "3", "4")] == ["lake", "none", "lake", "lake"]
    assert rows["2"]["status"] == "succeeded" and rows["2"]["exit_code"] == 0  # Batch's own
    assert rows["3"]["status"] == "failed" and "in/3.txt says bad" in rows["3"]["error"]

    code, out, err = loop.cli("status", "loop1")
    assert code == 40
    assert "in/3.txt says bad: fix the file (from the lake's copy of its result.json)" in out

    code, out, err = loop.cli("logs", "loop1", "1")
    assert code == 2
    assert err.rstrip().endswith(
        "task 1 of job loop1 has no stderr.txt: its node is gone, and its files with it "
        "(python -m worker results loop1 reads its result record from the lake)")


def _delete(path, url):
    from worker.config import Config
    from worker.lake import Lake, open_store

    config = Config.from_env()
    lake = Lake(open_store(url, config=config), "test")
    try:
        lake.delete(path)
    finally:
        lake.close()


def test_logs_of_an_earlier_attempt_where_the_node_keeps_it(loop):
    """One node: Batch's retry runs in the same task folder, where the local node keeps the
    first run's files as stderr.1.txt (Azure Batch overwrites them)."""
    loop.lake.seed_file(loop.filesystem, "in/3.txt", b"bad")
    assert loop.cli("deploy", "--set", "pool.nodes=1")[0] == 0
    assert loop.cli("status", "loop1", "--watch", "--interval", "0.3")[0] == 40
    code, first, err = loop.cli("logs", "loop1", "3", "--attempt", "1")
    assert code == 0, err
    assert "(attempt 1)" in first and "PermanentError: in/3.txt says bad" in first
    code, last, err = loop.cli("logs", "loop1", "3")
    assert code == 0, err
    assert "RepeatedFailure: in/3.txt says bad" in last and "not run again: attempt 1" in last
    code, out, err = loop.cli("logs", "loop1", "3", "--attempt", "7")
    assert code == 2
    assert err.rstrip().endswith("task 3 of job loop1 has no stderr.7.txt: its node does not "
                                 "keep that run's file (Azure Batch keeps only the latest run's "
                                 "stdout.txt and stderr.txt)")


def test_progress_is_a_line_every_few_seconds_off_a_terminal(monkeypatch):
    import io

    from worker.deploy.cloud import progress

    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    stream = io.StringIO()
    with progress.Bar("adding tasks", 300, "tasks", stream=stream) as bar:
        bar.advance(100)
        bar.advance(200)
    assert stream.getvalue() == "adding tasks: 100/300 tasks\nadding tasks: 300/300 tasks\n"
