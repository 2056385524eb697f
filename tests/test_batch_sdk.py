"""The local Batch service driven by azure-batch 15.x, as a laptop's deploy code drives
Azure Batch: a pool, a job, 500 tasks added in collections, waited on to completion, a
task's stdout.txt read, a failed task reactivated once its input is fixed; the long-running
operations (begin_*) polled to their end; errors raised as the SDK raises Azure's.

azure-batch 15 needs Python >= 3.9: on 3.8 the same workflow runs with 14.2
(tests/test_batch_sdk14.py).
"""

from __future__ import annotations

import shlex
import sys

import pytest
from support import wait_for

pytestmark = pytest.mark.skipif(sys.version_info < (3, 9),
                                reason="azure-batch 15 needs Python >= 3.9 "
                                       "(tests/test_batch_sdk14.py runs 14.2 on 3.8)")

TASKS = 500


def bash(script: str) -> str:
    return "/bin/bash -c %s" % shlex.quote(script)


def test_500_tasks_in_collections_run_to_completion_and_a_failed_one_is_reactivated(
        batch_service, tmp_path):
    from azure.batch import models as m
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    client = batch_service.client()
    client.create_pool(m.BatchPoolCreateOptions(
        id="pool", vm_size="standard_d2a_v4", target_dedicated_nodes=2,
        task_slots_per_node=4,
        task_scheduling_policy=m.BatchTaskSchedulingPolicy(node_fill_type="pack"),
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical",
                                                    offer="0001-com-ubuntu-server-jammy",
                                                    sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    client.create_job(m.BatchJobCreateOptions(id="job", pool_info=m.BatchPoolInfo(
        pool_id="pool")))
    fixed = tmp_path / "fixed"
    tasks = [m.BatchTaskCreateOptions(
        id="%03d" % n, command_line=bash(
            "echo task $AZ_BATCH_TASK_ID" if n != 250 else
            "test -e %s || { echo 'input missing' >&2; exit 4; }; echo fixed" % fixed))
        for n in range(TASKS)]
    result = client.create_tasks("job", tasks, max_concurrency=2)
    assert sorted(r.task_id for r in result.result_values) == [t.id for t in tasks]
    assert all(r.status == "success" for r in result.result_values)
    with pytest.raises(ResourceExistsError) as exists:
        client.create_task("job", m.BatchTaskCreateOptions(id="000", command_line="true"))
    assert exists.value.error.code == "TaskExists"

    counts = wait_for(lambda: (lambda c: c.task_counts.completed == TASKS and c)(
        client.get_job_task_counts("job")), 120, "500 tasks")
    assert (counts.task_counts.succeeded, counts.task_counts.failed) == (TASKS - 1, 1)
    listed = list(client.list_tasks("job", max_results=100, select=["id", "state"]))
    assert [t.id for t in listed] == [t.id for t in tasks]
    (failed,) = client.list_tasks("job", filter="executionInfo/result eq 'failure'")
    assert (failed.id, failed.execution_info.exit_code) == ("250", 4)
    assert failed.execution_info.failure_info.code == "FailureExitCode"
    stdout = b"".join(client.download_task_file("job", "123", "stdout.txt"))
    assert stdout == b"task 123\n"
    stderr = b"".join(client.download_task_file("job", "250", "stderr.txt"))
    assert stderr == b"input missing\n"

    fixed.touch()
    client.reactivate_task("job", "250")
    again = wait_for(lambda: (lambda t: t.state == m.BatchTaskState.COMPLETED and t)(
        client.get_task("job", "250")), 120, "the reactivated task")
    assert (again.execution_info.result, again.execution_info.exit_code) == (
        m.BatchTaskExecutionResult.SUCCESS, 0)
    assert b"".join(client.download_task_file("job", "250", "stdout.txt")) == b"fixed\n"
    props = client.get_task_file_properties("job", "250", "stdout.txt")
    assert props is None or getattr(props, "content_length", 6) == 6

    # (15.1 cannot send a terminate without options: its request builder needs a body)
    client.begin_terminate_job("job", {"terminateReason": "done"},
                               polling_interval=0.1).result()
    job = client.get_job("job")
    assert (job.state, job.execution_info.termination_reason) == (m.BatchJobState.COMPLETED,
                                                                "done")
    client.begin_delete_job("job", polling_interval=0.1).result()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_job("job")
    assert missing.value.error.code == "JobNotFound"
    assert client.pool_exists("pool") is True
    client.begin_delete_pool("pool", polling_interval=0.1).result()
    with pytest.raises(ResourceNotFoundError):  # (15.1's pool_exists raises on a 404 HEAD)
        client.get_pool("pool")


def test_the_long_running_pool_and_job_operations_poll_to_their_end(batch_service, tmp_path):
    from azure.batch import models as m

    client = batch_service.client()
    client.create_pool(m.BatchPoolCreateOptions(
        id="pool", vm_size="standard_d2a_v4", target_low_priority_nodes=1,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="x", sku="y"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    # A new pool allocates its nodes first; a resize meanwhile is refused (PoolBeingResized),
    # as on Azure: wait until it is steady, as a client must.
    wait_for(lambda: client.get_pool("pool").allocation_state == m.AllocationState.STEADY,
             what="the new pool to be steady")
    client.begin_resize_pool("pool", m.BatchPoolResizeOptions(
        target_dedicated_nodes=1, target_low_priority_nodes=1), polling_interval=0.1).result()
    pool = client.get_pool("pool")
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (1, 1)
    client.create_job(m.BatchJobCreateOptions(id="job", pool_info=m.BatchPoolInfo(
        pool_id="pool")))
    client.begin_disable_job("job", m.BatchJobDisableOptions(disable_tasks="requeue"),
                             polling_interval=0.1).result()
    assert client.get_job("job").state == m.BatchJobState.DISABLED
    client.begin_enable_job("job", polling_interval=0.1).result()
    assert client.get_job("job").state == m.BatchJobState.ACTIVE
    nodes = list(client.list_nodes("pool"))
    spot = [n.id for n in nodes if not n.is_dedicated]
    client.begin_remove_nodes("pool", m.BatchNodeRemoveOptions(node_ids=spot),
                              polling_interval=0.1).result()
    assert [n.is_dedicated for n in client.list_nodes("pool")] == [True]
    client.enable_pool_auto_scale("pool", m.BatchPoolEnableAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes = 0;",
        auto_scale_evaluation_interval="PT5M"))
    run = client.evaluate_pool_auto_scale("pool", m.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes = 2;"))
    assert "$TargetDedicatedNodes=2" in run.results
    wait_for(lambda: client.get_pool("pool").current_dedicated_nodes == 0,
             120, "the formula's shrink")
