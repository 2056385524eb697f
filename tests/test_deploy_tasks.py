"""Adding a job's tasks idempotently (worker/deploy/cloud/tasks.py) through azure-batch 15
against the local Batch service: one request per 100 tasks, a second run adds nothing, a task
id with another definition is a conflict, refusals are reported per task, a task's server
error inside the answer (a fault rule of kind ``item``), a lost answer and whole-request server
errors are retried without duplicates.

azure-batch 15 needs Python >= 3.9: skipped on 3.8 (the deploy commands refuse to run there).
"""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 9),
                                reason="the deploy loop needs azure-batch 15 (Python >= 3.9)")


@pytest.fixture
def cloud(batch_service, monkeypatch):
    """Clients for the service, signed in as the emulators' env file says (Entra token)."""
    from worker.deploy.cloud.account import Clients, resolve

    env = batch_service.environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clients = Clients(resolve(environ=env), env, retry_backoff_factor=0.01)
    yield clients
    clients.close()


def make_job(clients, job_id="job1", **extra):
    clients.batch.create_job(dict({"id": job_id, "poolInfo": {"poolId": "nopool"}}, **extra))


def task(n, command="/bin/true", **extra):
    return dict({"id": str(n), "commandLine": command, "displayName": "item %d" % n,
                 "constraints": {"maxTaskRetryCount": 2, "maxWallClockTime": "PT11M10S"},
                 "environmentSettings": [{"name": "ITEM", "value": str(n)}]}, **extra)


def adder(clients, job_id="job1", **options):
    from worker.deploy.cloud.tasks import TaskAdder

    options.setdefault("sleep", lambda s: None)
    return TaskAdder(clients.batch, job_id, clients.target.where(), **options)


def ids(clients, job_id="job1"):
    return sorted(t.id for t in clients.batch.list_tasks(job_id, select=["id"]))


def test_tasks_go_in_collections_of_100_and_a_second_run_adds_nothing(cloud):
    make_job(cloud)
    tasks = [task(n) for n in range(1, 251)]
    before = cloud.requests["batch"]
    report = adder(cloud).add(tasks, scan=False)
    assert (report.added, report.present, report.refused, report.conflicts) == (250, 0, [], [])
    assert cloud.requests["batch"] - before == 3  # 100 + 100 + 50
    assert ids(cloud) == sorted(str(n) for n in range(1, 251))
    before = cloud.requests["batch"]
    report = adder(cloud).add(tasks)
    assert (report.added, report.present) == (0, 250)
    assert cloud.requests["batch"] - before == 1  # one listing, nothing added
    assert ids(cloud) == sorted(str(n) for n in range(1, 251))


def test_a_task_id_with_another_definition_is_a_conflict_naming_the_fields(cloud):
    from worker.deploy.errors import ConflictError

    make_job(cloud)
    adder(cloud).add([task(1), task(2)])
    changed = [task(1), task(2, command="/bin/false"), task(3)]
    report = adder(cloud).add(changed)
    assert report.present == 1 and report.added == 1
    assert report.conflicts == [("2", ["commandLine"])]
    with pytest.raises(ConflictError) as caught:
        report.check("job1")
    assert str(caught.value).startswith(
        "job job1 already has 1 task(s) with these ids and another definition: 2 "
        "(commandLine): deploy under another job id (--set job.id=...)")


def test_a_refused_task_is_reported_with_its_id_and_the_services_words(cloud):
    from worker.deploy.errors import TaskAddError

    make_job(cloud)  # without usesTaskDependencies
    tasks = [task(1), task(2, dependsOn={"taskIds": ["1"]}), task(3)]
    report = adder(cloud).add(tasks)
    assert report.added == 2
    assert [(tid, code) for tid, code, _ in report.refused] == [
        ("2", "TaskDependenciesNotSpecifiedOnJob")]
    with pytest.raises(TaskAddError) as caught:
        report.check("job1")
    assert caught.value.exit_code == 2
    assert "Batch refused 1 task(s) of job job1: task 2: TaskDependenciesNotSpecifiedOnJob" \
        in str(caught.value)
    assert ids(cloud) == ["1", "3"]


def test_a_lost_answer_is_sent_again_and_taskexists_with_our_definition_counts_as_done(
        cloud, batch_service):
    """The service applies the collection and the connection breaks before the answer: the
    next round's TaskExists are read back and compared."""
    make_job(cloud)
    batch_service.set.faults.add("batch", "task.addcollection", "truncate", times=1)
    report = adder(cloud).add([task(n) for n in range(1, 121)])
    assert report.added + report.present == 120 and report.conflicts == []
    assert report.present >= 1  # the first collection's, read back
    assert ids(cloud) == sorted(str(n) for n in range(1, 121))


def test_a_tasks_server_error_in_the_answer_sends_that_task_again(cloud, batch_service):
    """Batch answers the collection 200 with a serverError for two of its tasks (a fault
    rule of kind item): those two go again in the next round, alone, and are added; a
    clientError is reported with Batch's words and never sent again."""
    make_job(cloud)
    faults = batch_service.set.faults
    faults.add("batch", "task.addcollection", "item", status=503, times=2)
    slept = []
    before = cloud.requests["batch"]
    report = adder(cloud, sleep=slept.append).add([task(n) for n in range(1, 6)], scan=False)
    assert (report.added, report.refused, slept) == (5, [], [1.0])
    assert cloud.requests["batch"] - before == 2  # the collection, then the two again
    assert ids(cloud) == [str(n) for n in range(1, 6)]

    make_job(cloud, "job2")
    faults.add("batch", "task.addcollection", "item", status=400,
               code="InvalidPropertyValue", times=1)
    report = adder(cloud, "job2", sleep=slept.append).add([task(1), task(2)], scan=False)
    assert report.added == 1
    assert report.refused == [("1", "InvalidPropertyValue", "The value provided for one of "
                                                            "the properties in the request "
                                                            "body is invalid.")]
    assert ids(cloud, "job2") == ["2"]


def test_a_task_without_an_answer_is_sent_again():
    """Every task of a collection gets a result from the local service; one Batch left out
    of its answer goes again (the answer here is azure-batch's own model of that JSON)."""
    from azure.batch import models

    from worker.deploy.cloud.tasks import TaskAdder

    answer = models.BatchCreateTaskCollectionResult({"value": [
        {"status": "success", "taskId": "1"}]})
    retry, present = TaskAdder(None, "job")._outcomes([{"id": "1"}, {"id": "2"}], answer)
    assert ([t["id"] for t in retry], present) == (["2"], [])


def test_server_errors_on_whole_requests_are_retried_in_rounds(cloud, batch_service):
    """The SDK retries a 503 three times (4 requests, backoff shortened here); what outlives
    that goes again in the next round, after the adder's own backoff."""
    make_job(cloud)
    batch_service.set.faults.add("batch", "task.addcollection", "status", status=503, times=6)
    slept = []
    before = cloud.requests["batch"]
    report = adder(cloud, sleep=slept.append, concurrency=1).add(
        [task(n) for n in range(1, 151)], scan=False)
    assert cloud.requests["batch"] - before == 6 + 2
    assert slept == [1.0]
    assert report.added == 150 and ids(cloud) == sorted(str(n) for n in range(1, 151))


def test_server_errors_that_outlast_the_rounds_are_exit_3_with_the_fix(cloud, batch_service):
    from worker.deploy.errors import CloudTransient

    make_job(cloud)
    batch_service.set.faults.add("batch", "task.addcollection", "status", status=503, times=None)
    with pytest.raises(CloudTransient) as caught:
        adder(cloud, rounds=2).add([task(1), task(2)])
    assert caught.value.exit_code == 3
    assert str(caught.value) == ("2 task(s) of job job1 were not added after 2 tries (server "
                                 "errors): run deploy again; it adds only what is missing")


def test_a_missing_job_is_one_line_exit_2_with_the_request_ids(cloud):
    from worker.deploy.errors import NotFoundError

    with pytest.raises(NotFoundError) as caught:
        adder(cloud, job_id="nojob").add([task(1)], scan=False)
    text = str(caught.value)
    assert text.startswith("adding tasks to job nojob: 404 JobNotFound: ")
    assert "request-id " in text and "client-request-id " in text
    assert text.endswith("job nojob does not exist (any more)")
    assert "\n" not in text


def test_definitions_compare_with_batchs_defaults_and_durations():
    from worker.deploy.cloud.tasks import differences, seconds_of

    ours = task(1)
    theirs = dict(task(1), requiredSlots=1,
                  constraints={"maxTaskRetryCount": 2, "maxWallClockTime": "PT670S",
                               "retentionTime": "P7D"},
                  environmentSettings=list(reversed(ours["environmentSettings"])))
    assert differences(ours, theirs) == []
    assert differences(dict(ours, requiredSlots=2), theirs) == ["requiredSlots"]
    assert seconds_of("P10675199DT2H48M5.4775807S") > 9e11
    assert seconds_of("PT1H1M1.5S") == 3661.5 and seconds_of("nonsense") is None
