"""What the local Batch service's nodes do with tasks, driven over its REST API with real
processes (bash command lines): the variables a task gets, slots and the pool's fill
policy, retries, dependencies, exit conditions' job actions, maxWallClockTime, the start
task, terminate and reactivate, spot preemption (by command and by rate) with its requeues,
shrinking a pool by each deallocation option, and application packages on the nodes.

The node implementation is local-batch's (worker/deploy/localbatch/); its own rules are
tests/test_localbatch.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import pytest
from batch_raw import Raw, error_of
from support import wait_for
from test_batch_service import make, pool_body


def bash(script: str) -> str:
    return "/bin/bash -c %s" % shlex.quote(script)


def hold(folder: Path, name: str) -> str:
    """A script that says it runs (``NAME.run``) and waits for ``NAME.go``."""
    return ("touch %s/%s.run; while [ ! -e %s/%s.go ]; do sleep 0.05; done; echo released"
            % (folder, name, folder, name))


def release(folder: Path, name: str) -> None:
    (folder / (name + ".go")).touch()


def running(folder: Path, name: str) -> None:
    wait_for(lambda: (folder / (name + ".run")).exists(), what="%s to run" % name)


@pytest.fixture
def raw(batch_service) -> Raw:
    return Raw(batch_service)


def task(raw: Raw, job: str, task_id: str) -> Dict[str, Any]:
    status, document, _ = raw.send("GET", "/jobs/%s/tasks/%s" % (job, task_id))
    assert status == 200, document
    return document


def completed(raw: Raw, job: str, task_id: str, timeout: float = 60) -> Dict[str, Any]:
    return wait_for(lambda: (lambda t: t["state"] == "completed" and t)(task(raw, job, task_id)),
                    timeout, "task %s to complete" % task_id)


def pool_with(raw: Raw, pool_id: str = "pool1", **extra: Any) -> List[Dict[str, Any]]:
    make(raw, "/pools", pool_body(pool_id, **extra))
    want = int(extra.get("targetDedicatedNodes") or 0) + int(
        extra.get("targetLowPriorityNodes") or 0)

    def ready():
        nodes = raw.send("GET", "/pools/%s/nodes" % pool_id)[1]["value"]
        return len(nodes) == want and all(n["state"] in ("idle", "starttaskfailed")
                                          for n in nodes) and nodes
    return wait_for(ready, what="the pool's nodes") if want else []


def job_with(raw: Raw, tasks: List[Dict[str, Any]], job_id: str = "job1",
             pool_id: str = "pool1", **extra: Any) -> None:
    make(raw, "/jobs", dict({"id": job_id, "poolInfo": {"poolId": pool_id}}, **extra))
    if tasks:
        status, document, _ = raw.send("POST", "/jobs/%s/addtaskcollection" % job_id,
                                       {"value": tasks})
        assert status == 200 and all(r["status"] == "success" for r in document["value"]), \
            document


def test_a_task_gets_batchs_variables_its_job_and_task_settings_and_the_vm_s(raw, batch_service,
                                                                           tmp_path):
    (node,) = pool_with(raw, targetLowPriorityNodes=1)
    job_with(raw, [{"id": "t1", "commandLine": bash("env > %s/env.txt" % tmp_path),
                    "environmentSettings": [{"name": "BOTH", "value": "task"}]}],
             commonEnvironmentSettings=[{"name": "BOTH", "value": "job"},
                                        {"name": "FROM_JOB", "value": "job"}])
    done = completed(raw, "job1", "t1")
    assert done["executionInfo"]["result"] == "success"
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines()
               if "=" in line)
    root = Path(env["AZ_BATCH_NODE_ROOT_DIR"])
    assert (env["AZ_BATCH_NODE_ID"], env["AZ_BATCH_POOL_ID"], env["AZ_BATCH_JOB_ID"],
            env["AZ_BATCH_TASK_ID"], env["AZ_BATCH_NODE_IS_DEDICATED"]) == (
        node["id"], "pool1", "job1", "t1", "false")
    assert env["AZ_BATCH_ACCOUNT_URL"] == batch_service.endpoint
    assert env["AZ_BATCH_ACCOUNT_NAME"] == batch_service.account
    assert env["AZ_BATCH_TASK_DIR"] == str(root / "workitems" / "job1" / "job-1" / "t1")
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == env["AZ_BATCH_TASK_DIR"] + "/wd"
    assert (env["BOTH"], env["FROM_JOB"]) == ("task", "job")
    machine = batch_service.environment()
    base = machine["AZURE_POD_IDENTITY_AUTHORITY_HOST"]  # the node's own, where per VM
    assert env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] in (base, base + "/vms/" + node["id"])
    assert env["REQUESTS_CA_BUNDLE"] == machine["REQUESTS_CA_BUNDLE"]
    info = done["nodeInfo"]
    assert (info["nodeId"], info["poolId"], info["taskRootDirectory"]) == (
        node["id"], "pool1", "workitems/job1/job-1/t1")


@pytest.mark.parametrize("fill, same_node", [("pack", True), ("spread", False)])
def test_the_pool_fills_its_nodes_by_its_policy(raw, tmp_path, fill, same_node):
    pool_with(raw, targetDedicatedNodes=2, taskSlotsPerNode=2,
              taskSchedulingPolicy={"nodeFillType": fill})
    job_with(raw, [{"id": name, "commandLine": bash(hold(tmp_path, name))}
                   for name in ("a", "b")])
    running(tmp_path, "a")
    running(tmp_path, "b")
    nodes = {task(raw, "job1", name)["nodeInfo"]["nodeId"] for name in ("a", "b")}
    assert (len(nodes) == 1) == same_node
    release(tmp_path, "a")
    release(tmp_path, "b")


def test_required_slots_wait_for_a_node_with_that_many_free(raw, tmp_path):
    pool_with(raw, targetDedicatedNodes=1, taskSlotsPerNode=2)
    job_with(raw, [{"id": "small", "commandLine": bash(hold(tmp_path, "small"))},
                   {"id": "big", "commandLine": bash("ls %s/*.run | wc -l > %s/seen"
                                                     % (tmp_path, tmp_path)),
                    "requiredSlots": 2}])
    running(tmp_path, "small")
    time.sleep(0.3)
    assert task(raw, "job1", "big")["state"] == "active"
    release(tmp_path, "small")
    completed(raw, "job1", "big")
    counts = raw.send("GET", "/jobs/job1/taskcounts")[1]
    assert counts["taskSlotCounts"]["completed"] == 3


def test_a_failure_is_retried_up_to_the_task_s_or_the_job_s_count(raw, tmp_path):
    pool_with(raw, targetDedicatedNodes=1, taskSlotsPerNode=2)
    script = "echo x >> %s/tries.$AZ_BATCH_TASK_ID; exit 3" % tmp_path
    job_with(raw, [{"id": "own", "commandLine": bash(script),
                    "constraints": {"maxTaskRetryCount": 1}},
                   {"id": "jobs", "commandLine": bash(script)}],
             constraints={"maxTaskRetryCount": 2})
    own, jobs = completed(raw, "job1", "own"), completed(raw, "job1", "jobs")
    assert (own["executionInfo"]["retryCount"], own["executionInfo"]["exitCode"]) == (1, 3)
    assert own["executionInfo"]["failureInfo"]["code"] == "FailureExitCode"
    assert (jobs["executionInfo"]["retryCount"], jobs["constraints"]["maxTaskRetryCount"]) == \
        (2, 2)
    assert (tmp_path / "tries.jobs").read_text() == "x\nx\nx\n"


def test_dependencies_wait_for_tasks_added_later_and_follow_dependency_actions(raw, tmp_path):
    pool_with(raw, targetDedicatedNodes=1, taskSlotsPerNode=4)
    satisfy = {"exitCodes": [{"code": 4, "exitOptions": {"dependencyAction": "satisfy"}}]}
    job_with(raw, [{"id": "merge", "commandLine": "true",
                    "dependsOn": {"taskIdRanges": [{"start": 1, "end": 2}]}},
                   {"id": "after-block", "commandLine": "true",
                    "dependsOn": {"taskIds": ["3"]}}], usesTaskDependencies=True)
    time.sleep(0.3)
    assert task(raw, "job1", "merge")["state"] == "active"  # 1 and 2 are not there yet
    make(raw, "/jobs/job1/tasks", {"id": "1", "commandLine": "true"})
    make(raw, "/jobs/job1/tasks", {"id": "2", "commandLine": bash("exit 4"),
                                   "exitConditions": satisfy})
    make(raw, "/jobs/job1/tasks", {"id": "3", "commandLine": bash("exit 4")})
    assert completed(raw, "job1", "merge")["executionInfo"]["result"] == "success"
    completed(raw, "job1", "3")
    time.sleep(0.3)
    assert task(raw, "job1", "after-block")["state"] == "active"  # blocked: stays active


def test_an_exit_condition_disables_the_job_and_requeues_its_running_tasks(raw, tmp_path):
    pool_with(raw, targetDedicatedNodes=1, taskSlotsPerNode=2)
    disable = {"exitCodes": [{"code": 2, "exitOptions": {"jobAction": "disable"}}]}
    job_with(raw, [{"id": "long", "commandLine": bash(hold(tmp_path, "long"))},
                   {"id": "config", "commandLine": bash("sleep 0.2; exit 2"),
                    "exitConditions": disable}],
             onTaskFailure="performexitoptionsjobaction")
    completed(raw, "job1", "config")
    job = wait_for(lambda: (lambda j: j["state"] == "disabled" and j)(
        raw.send("GET", "/jobs/job1")[1]), what="a disabled job")
    assert job["previousState"] in ("active", "disabling")
    long = task(raw, "job1", "long")
    assert (long["state"], long["executionInfo"]["requeueCount"]) == ("active", 1)
    release(tmp_path, "long")
    assert raw.send("POST", "/jobs/job1/enable")[0] == 202
    assert completed(raw, "job1", "long")["executionInfo"]["result"] == "success"


def test_changing_a_job_leaves_its_running_tasks_running(raw, tmp_path):
    """A patch or update of a job that keeps its pool (deploy sets onAllTasksComplete once
    the tasks are in) is not a lost node: its running tasks go on, their requeueCount 0."""
    pool_with(raw, targetDedicatedNodes=1)
    job_with(raw, [{"id": "t", "commandLine": bash(
        "echo run >> %s/runs; %s" % (tmp_path, hold(tmp_path, "t")))}])
    running(tmp_path, "t")
    assert raw.send("PATCH", "/jobs/job1", {"onAllTasksComplete": "terminatejob",
                                            "priority": 10})[0] == 200
    assert raw.send("PUT", "/jobs/job1", {"poolInfo": {"poolId": "pool1"},
                                          "onAllTasksComplete": "terminatejob"})[0] == 200
    info = task(raw, "job1", "t")["executionInfo"]
    assert (info["requeueCount"], "lastRequeueTime" in info) == (0, False)
    release(tmp_path, "t")
    assert completed(raw, "job1", "t")["executionInfo"]["requeueCount"] == 0
    assert (tmp_path / "runs").read_text() == "run\n"
    wait_for(lambda: raw.send("GET", "/jobs/job1")[1]["state"] == "completed",
             what="the job to end by onAllTasksComplete")


def test_a_task_past_its_max_wall_clock_time_is_killed(raw):
    pool_with(raw, targetDedicatedNodes=1)
    job_with(raw, [{"id": "slow", "commandLine": bash("sleep 60"),
                    "constraints": {"maxWallClockTime": "PT0.5S", "maxTaskRetryCount": 3}}])
    slow = completed(raw, "job1", "slow")
    info = slow["executionInfo"]
    assert (info["exitCode"], info["retryCount"], info["result"]) == (-9, 0, "failure")
    assert "maxWallClockTime" in info["failureInfo"]["details"][0]["value"]


def test_terminate_ends_a_running_task_and_reactivate_runs_a_failed_one_again(raw, tmp_path):
    pool_with(raw, targetDedicatedNodes=1, taskSlotsPerNode=2)
    flaky = "test -e %s/fixed || { echo 'no input' >&2; exit 4; }; echo ok" % tmp_path
    job_with(raw, [{"id": "flaky", "commandLine": bash(flaky)},
                   {"id": "stuck", "commandLine": bash(
                       "trap 'exit 143' TERM; touch %s/stuck.run; sleep 60 & wait" % tmp_path)}])
    running(tmp_path, "stuck")
    assert raw.send("POST", "/jobs/job1/tasks/stuck/terminate")[0] == 204
    stuck = completed(raw, "job1", "stuck")
    assert stuck["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
    assert raw.send("POST", "/jobs/job1/tasks/stuck/terminate")[1]["code"] == "TaskCompleted"
    first = completed(raw, "job1", "flaky")
    assert first["executionInfo"]["exitCode"] == 4
    (tmp_path / "fixed").touch()
    assert raw.send("POST", "/jobs/job1/tasks/flaky/reactivate")[0] == 204
    again = completed(raw, "job1", "flaky")
    assert (again["executionInfo"]["result"], again["executionInfo"]["exitCode"]) == (
        "success", 0)
    assert raw.send("POST", "/jobs/job1/tasks/flaky/reactivate")[1]["code"] == "TaskSucceeded"
    status, data, _ = raw.send("GET", "/jobs/job1/tasks/flaky/files/stdout.txt")
    assert (status, data) == (200, "ok\n")


def test_the_start_task_runs_first_and_its_failure_leaves_the_node_unusable(raw, tmp_path):
    start = {"commandLine": bash("echo try >> %s/tries; echo started; test -e %s/ok"
                                 % (tmp_path, tmp_path)),
             "waitForSuccess": True, "maxTaskRetryCount": 1}
    (bad,) = pool_with(raw, "bad", targetDedicatedNodes=1, startTask=start)
    assert bad["state"] == "starttaskfailed"
    info = raw.send("GET", "/pools/bad/nodes/%s" % bad["id"])[1]["startTaskInfo"]
    assert (info["state"], info["result"], info["exitCode"], info["retryCount"]) == (
        "completed", "failure", 1, 1)
    assert (tmp_path / "tries").read_text() == "try\ntry\n"
    job_with(raw, [{"id": "t", "commandLine": "true"}], job_id="waits", pool_id="bad")
    time.sleep(0.3)
    assert task(raw, "waits", "t")["state"] == "active"
    (tmp_path / "ok").touch()
    (good,) = pool_with(raw, "good", targetDedicatedNodes=1, startTask=start)
    assert good["state"] == "idle"
    status, data, _ = raw.send("GET", "/pools/good/nodes/%s/files/startup/stdout.txt"
                               % good["id"])
    assert (status, data) == (200, "started\n")
    listing = raw.send("GET", "/pools/good/nodes/%s/files" % good["id"],
                       params={"recursive": "true", "$filter": "startswith(name, 'startup')"}
                       )[1]["value"]
    assert {"startup/stdout.txt", "startup/stderr.txt", "startup/wd"} <= {
        f["name"] for f in listing}


def test_task_files_are_listed_and_read_in_ranges(raw, tmp_path):
    pool_with(raw, targetDedicatedNodes=1)
    job_with(raw, [{"id": "t", "commandLine": bash("printf 0123456789; echo out > o.txt")}])
    completed(raw, "job1", "t")
    files = raw.send("GET", "/jobs/job1/tasks/t/files", params={"recursive": "true"})[1]
    by_name = {f["name"]: f for f in files["value"]}
    assert set(by_name) >= {"stdout.txt", "stderr.txt", "wd", "wd/o.txt"}
    assert by_name["wd"]["isDirectory"] is True
    assert by_name["stdout.txt"]["properties"]["contentLength"] == 10
    status, data, headers = raw.send("GET", "/jobs/job1/tasks/t/files/stdout.txt",
                                     headers={"ocp-range": "bytes=2-5"})
    assert (status, data) == (200, 2345)  # JSON-decoded: the digits are a number
    status, _, headers = raw.send("HEAD", "/jobs/job1/tasks/t/files/stdout.txt")
    assert (status, headers["content-length"], headers["ocp-batch-file-isdirectory"]) == (
        200, "10", "false")
    assert raw.send("DELETE", "/jobs/job1/tasks/t/files/wd/o.txt")[0] == 200
    assert raw.send("GET", "/jobs/job1/tasks/t/files/wd/o.txt")[1]["code"] == "FileNotFound"
    assert raw.send("GET", "/jobs/job1/tasks/t/files/..%2F..%2F..%2Fx")[1]["code"] == "FileNotFound"


# -- spot nodes -------------------------------------------------------------------------------

def test_a_preempted_spot_node_requeues_its_task_which_runs_again_elsewhere(
        raw, batch_service, tmp_path):
    # the node stays preempted for a minute of real time (at 60 service seconds per
    # second) whatever the machine's load, until the clock is sped up for its return
    batch_service.configure(recovery=3600.0)
    pool_with(raw, targetLowPriorityNodes=2, taskSlotsPerNode=1)
    script = ("echo run on $AZ_BATCH_NODE_ID >> %s/runs; touch %s/t.run; "
              "while [ ! -e %s/t.go ]; do sleep 0.05; done" % (tmp_path, tmp_path, tmp_path))
    job_with(raw, [{"id": "t", "commandLine": bash(script)}])
    running(tmp_path, "t")
    first = task(raw, "job1", "t")["nodeInfo"]["nodeId"]
    (tmp_path / "t.run").unlink()
    assert batch_service.preempt(first) == 1
    node = raw.send("GET", "/pools/pool1/nodes/%s" % first)[1]
    assert node["state"] == "preempted"
    status, document, _ = raw.send("GET", "/jobs/job1/tasks/t/files/stdout.txt")
    # the old node's files are gone; the task may already be starting on the other node
    assert (status, document.get("code") if isinstance(document, dict) else None) in (
        (409, "TaskFilesUnavailable"), (404, "FileNotFound"), (200, None))
    running(tmp_path, "t")
    again = task(raw, "job1", "t")
    assert again["nodeInfo"]["nodeId"] != first
    assert again["executionInfo"]["requeueCount"] == 1
    assert again["executionInfo"]["retryCount"] == 0
    release(tmp_path, "t")
    assert completed(raw, "job1", "t")["executionInfo"]["result"] == "success"
    assert len((tmp_path / "runs").read_text().splitlines()) == 2
    batch_service.configure(time_scale=3600.0)  # its hour away passes in a second
    back = wait_for(lambda: (lambda n: n["state"] == "idle" and n)(
        raw.send("GET", "/pools/pool1/nodes/%s" % first)[1]), what="the node's return")
    assert back["isDedicated"] is False
    pool = raw.send("GET", "/pools/pool1")[1]
    assert pool["currentLowPriorityNodes"] == 2


def test_spot_nodes_are_preempted_at_the_preempt_rate(raw, batch_service, tmp_path):
    """60 preemptions per node-hour at 60 service seconds per second: each spot node is
    preempted about once a real second. Tasks that wait for a release are requeued by it;
    released, every task succeeds."""
    batch_service.configure(recovery=30.0)
    pool_with(raw, targetLowPriorityNodes=2, taskSlotsPerNode=2)
    job_with(raw, [{"id": str(n), "commandLine": bash(
        "while [ ! -e %s/go ]; do sleep 0.05; done" % tmp_path)} for n in range(4)])
    batch_service.configure(preempt_rate=60.0)

    def requeues() -> int:
        return sum(task(raw, "job1", str(n))["executionInfo"]["requeueCount"]
                   for n in range(4))

    wait_for(lambda: requeues() > 0, what="a preemption")
    (tmp_path / "go").touch()
    batch_service.configure(preempt_rate=0.0)
    for n in range(4):
        assert completed(raw, "job1", str(n), timeout=120)["executionInfo"]["result"] == \
            "success"
    assert requeues() > 0


def test_shrinking_a_pool_follows_the_deallocation_option(raw, tmp_path):
    pool_with(raw, targetDedicatedNodes=1)
    job_with(raw, [{"id": "a", "commandLine": bash(hold(tmp_path, "a"))}])
    running(tmp_path, "a")
    assert raw.send("POST", "/pools/pool1/resize", {
        "targetDedicatedNodes": 0, "nodeDeallocationOption": "taskcompletion"})[0] == 202
    wait_for(lambda: raw.send("GET", "/pools/pool1/nodes")[1]["value"][0]["state"] ==
             "leavingpool", what="the node to be leaving")  # while its task runs
    assert raw.send("GET", "/pools/pool1")[1]["allocationState"] == "resizing"
    release(tmp_path, "a")
    assert completed(raw, "job1", "a")["executionInfo"]["result"] == "success"
    wait_for(lambda: raw.send("GET", "/pools/pool1/nodes")[1]["value"] == [],
             what="the node to leave")
    assert raw.send("GET", "/pools/pool1")[1]["allocationState"] == "steady"


# -- packages on the nodes ----------------------------------------------------------------------

def test_pool_and_task_packages_are_extracted_with_their_variables(raw, batch_service,
                                                                   tmp_path):
    for app in ("tool", "data"):
        archive = tmp_path / ("%s.zip" % app)
        with zipfile.ZipFile(str(archive), "w") as handle:
            handle.writestr("hello.txt", "from %s\n" % app)
        batch_service.add_package(archive, app, "1.0")
    pool_with(raw, targetDedicatedNodes=1, applicationPackageReferences=[
        {"applicationId": "tool", "version": "1.0"}])
    script = "cat $AZ_BATCH_APP_PACKAGE_tool_1_0/hello.txt $AZ_BATCH_APP_PACKAGE_data/hello.txt"
    job_with(raw, [{"id": "t", "commandLine": bash(script),
                    "applicationPackageReferences": [{"applicationId": "data"}]}])
    done = completed(raw, "job1", "t")
    assert done["executionInfo"]["result"] == "success", done
    assert raw.send("GET", "/jobs/job1/tasks/t/files/stdout.txt")[1] == \
        "from tool\nfrom data\n"


# -- emulate batch preempt NODE, against `emulate --batch` ---------------------------------------

def test_emulate_batch_preempt_preempts_a_spot_node_of_a_running_service(tmp_path):
    env_file = tmp_path / "emulators.env"
    log = (tmp_path / "emulate.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "worker", "emulate", "--batch",
                                "--batch-port", "0", "--lake-port", "0", "--vault-port", "0",
                                "--identity-port", "0", "--quiet", "--pool-quota", "1",
                                "--env-file", str(env_file)], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_for(env_file.exists, what="the emulators")
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        handle = _Endpoint(env)
        raw = Raw(handle)
        nodes = pool_with(raw, targetDedicatedNodes=1, targetLowPriorityNodes=1)
        spot = [n["id"] for n in nodes if not n["isDedicated"]][0]
        dedicated = [n["id"] for n in nodes if n["isDedicated"]][0]
        assert raw.send("POST", "/pools", pool_body("pool2"))[1]["code"] == "PoolQuotaReached"

        def preempt(node: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "worker", "emulate", "batch",
                                   "preempt", node], capture_output=True, text=True,
                                  env=dict(os.environ, **env), timeout=60)

        done = preempt(spot)
        assert done.returncode == 0, done.stderr
        assert done.stdout == ("emulate: node %s of pool pool1 preempted; 0 running task(s) "
                               "requeued\n" % spot)
        assert raw.send("GET", "/pools/pool1/nodes/%s" % spot)[1]["state"] == "preempted"
        refused = preempt(dedicated)
        assert refused.returncode == 2
        assert refused.stderr == ("emulate batch preempt: Node %s is dedicated: only spot "
                                  "(low-priority) nodes are preempted.\n" % dedicated)
        assert preempt("tvmps_nope_p").stderr == (
            "emulate batch preempt: No pool of the account has a node tvmps_nope_p.\n")
        unset = subprocess.run([sys.executable, "-m", "worker", "emulate", "batch", "preempt",
                                spot], capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith("AZURE_BATCH")})
        assert unset.returncode == 2 and "AZURE_BATCH_ENDPOINT" in unset.stderr
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
    assert process.returncode == 0, (tmp_path / "emulate.log").read_text()


class _Endpoint:
    """What Raw needs of a service it reaches from an env file."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.endpoint = env["AZURE_BATCH_ENDPOINT"]
        self.account = env["AZURE_BATCH_ACCOUNT"]
        self.key = env["AZURE_BATCH_ACCESS_KEY"]
        self.ca_path = env["REQUESTS_CA_BUNDLE"]


def test_error_bodies_stay_json_for_every_verb(raw):
    status, document, headers = raw.send("DELETE", "/jobs/none")
    assert status == 404 and json.dumps(document) and error_of(document)[0] == "JobNotFound"
    assert headers["content-type"].startswith("application/json")


# -- autoscale on a running pool ------------------------------------------------------------------

def test_the_seed_pools_formula_scales_from_0_to_1_spot_node_and_back(raw, batch_service,
                                                                      tmp_path):
    """shared/BATCH.md's seed formula, every PT5M at 600 service seconds per second: no node
    while there is no task, one spot node once tasks arrive, none again after they
    finished (released by taskcompletion)."""
    from test_batch_autoscale import SEED_FORMULA

    batch_service.configure(time_scale=600.0)
    make(raw, "/pools", pool_body(targetDedicatedNodes=None, enableAutoScale=True,
                                  autoScaleFormula=SEED_FORMULA,
                                  autoScaleEvaluationInterval="PT5M", taskSlotsPerNode=2))
    pool = wait_for(lambda: (lambda p: "autoScaleRun" in p and p)(
        raw.send("GET", "/pools/pool1")[1]), what="the first evaluation")
    assert pool["autoScaleRun"]["results"].startswith(
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;"
        "$NodeDeallocationOption=taskcompletion;")
    assert pool["currentLowPriorityNodes"] == 0
    job_with(raw, [{"id": name, "commandLine": bash(hold(tmp_path, name))}
                   for name in ("a", "b", "c")])
    running(tmp_path, "a")
    node = task(raw, "job1", "a")["nodeInfo"]["nodeId"]
    assert node.endswith("_p")
    pool = raw.send("GET", "/pools/pool1")[1]
    assert (pool["targetLowPriorityNodes"], pool["targetDedicatedNodes"]) == (1, 0)
    for name in ("a", "b", "c"):
        release(tmp_path, name)
    for name in ("a", "b", "c"):
        assert completed(raw, "job1", name)["executionInfo"]["result"] == "success"
    pool = wait_for(lambda: (lambda p: p["currentLowPriorityNodes"] == 0 and p)(
        raw.send("GET", "/pools/pool1")[1]), what="the spot node's release")
    assert pool["targetLowPriorityNodes"] == 0
    assert "$TargetLowPriorityNodes=0" in pool["autoScaleRun"]["results"]


def test_disabling_a_job_waits_for_or_terminates_its_running_tasks(raw, batch_service, tmp_path):
    batch_service.configure(kill_after=1.0)
    pool_with(raw, targetDedicatedNodes=1, taskSlotsPerNode=2)
    job_with(raw, [{"id": "w", "commandLine": bash(hold(tmp_path, "w"))}], job_id="waits")
    job_with(raw, [{"id": "t", "commandLine": bash(hold(tmp_path, "t"))}], job_id="ends")
    running(tmp_path, "w")
    running(tmp_path, "t")
    assert raw.send("POST", "/jobs/waits/disable", {"disableTasks": "wait"})[0] == 202
    assert raw.send("GET", "/jobs/waits")[1]["state"] == "disabling"
    assert raw.send("POST", "/jobs/ends/disable", {"disableTasks": "terminate"})[0] == 202
    ended = completed(raw, "ends", "t")
    assert ended["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
    release(tmp_path, "w")
    assert completed(raw, "waits", "w")["executionInfo"]["result"] == "success"
    wait_for(lambda: raw.send("GET", "/jobs/waits")[1]["state"] == "disabled",
             what="the job to be disabled")


def test_a_task_s_constraints_and_a_pool_s_properties_can_be_changed(raw):
    make(raw, "/pools", pool_body(metadata=[{"name": "team", "value": "a"}]))
    make(raw, "/jobs", {"id": "j", "poolInfo": {"poolId": "pool1"}})
    make(raw, "/jobs/j/tasks", {"id": "t", "commandLine": "true"})
    assert raw.send("PUT", "/jobs/j/tasks/t", {"constraints": {"maxTaskRetryCount": 4,
                                                               "maxWallClockTime": "PT1H"}}
                    )[0] == 200
    constraints = task(raw, "j", "t")["constraints"]
    assert (constraints["maxTaskRetryCount"], constraints["maxWallClockTime"]) == (4, "PT1H")
    assert raw.send("PATCH", "/pools/pool1", {"metadata": [{"name": "team", "value": "b"}],
                                              "taskSchedulingPolicy": {"nodeFillType": "pack"}}
                    )[0] == 200
    pool = raw.send("GET", "/pools/pool1")[1]
    assert (pool["metadata"], pool["taskSchedulingPolicy"]) == (
        [{"name": "team", "value": "b"}], {"nodeFillType": "pack"})
    assert raw.send("POST", "/pools/pool1/updateproperties", {
        "applicationPackageReferences": [], "metadata": [],
        "startTask": {"commandLine": "true"}})[0] == 204
    pool = raw.send("GET", "/pools/pool1")[1]
    assert ("metadata" not in pool, pool["startTask"]["commandLine"]) == (True, "true")
