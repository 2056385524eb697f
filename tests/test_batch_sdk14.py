"""The local Batch service driven by azure-batch 14.2 (msrest; what a Python 3.8 node's
client would be): a pool, a job, 100 tasks in collections, waited on to completion, a
task's stdout.txt read, a failed task reactivated. The full workflow with 15.x is
tests/test_batch_sdk.py."""

from __future__ import annotations

import shlex
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 9),
                                reason="azure-batch 14.2 is the dev lock's SDK on Python 3.8 "
                                       "(tests/test_batch_sdk.py runs 15.x)")

TASKS = 100


def test_100_tasks_run_and_a_failed_one_is_reactivated_with_14_2(batch_service, tmp_path):
    from azure.batch import models as m
    from azure.batch.models import BatchErrorException

    client = batch_service.client()
    client.pool.add(m.PoolAddParameter(
        id="pool", vm_size="standard_d2a_v4", target_dedicated_nodes=1, task_slots_per_node=4,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.ImageReference(publisher="canonical", offer="x", sku="y"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    client.job.add(m.JobAddParameter(id="job", pool_info=m.PoolInformation(pool_id="pool")))
    fixed = tmp_path / "fixed"
    tasks = [m.TaskAddParameter(id=str(n), command_line="/bin/bash -c %s" % shlex.quote(
        "echo task $AZ_BATCH_TASK_ID" if n != 42 else "test -e %s || exit 4" % fixed))
        for n in range(TASKS)]
    for start in range(0, TASKS, 50):
        result = client.task.add_collection("job", tasks[start:start + 50])
        assert [r.status for r in result.value] == ["success"] * 50
    with pytest.raises(BatchErrorException) as exists:
        client.task.add("job", m.TaskAddParameter(id="1", command_line="true"))
    assert (exists.value.error.code, exists.value.response.status_code) == ("TaskExists", 409)

    deadline = time.monotonic() + 120
    while client.job.get_task_counts("job").task_counts.completed < TASKS:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    counts = client.job.get_task_counts("job").task_counts
    assert (counts.succeeded, counts.failed) == (TASKS - 1, 1)
    assert b"".join(client.file.get_from_task("job", "7", "stdout.txt")) == b"task 7\n"
    failed = list(client.task.list("job", task_list_options=m.TaskListOptions(
        filter="executionInfo/result eq 'failure'", max_results=10)))
    assert [(t.id, t.execution_info.exit_code) for t in failed] == [("42", 4)]

    fixed.touch()
    client.task.reactivate("job", "42")
    while client.task.get("job", "42").state != m.TaskState.completed:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.task.get("job", "42").execution_info.result == m.TaskExecutionResult.success
    client.job.delete("job")
    client.pool.delete("pool")
    assert client.pool.exists("pool") is False
