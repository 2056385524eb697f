"""The local Batch node's rules, with real processes (bash command lines, no package): slots,
retries, dependencies and dependencyAction, job actions, maxWallClockTime kills, recovery,
termination, the start task, the variables a task gets, and the documents it refuses.

The example pipeline through the real package, launcher and emulators, in a network
namespace with only loopback, is tests/test_localbatch_node.py.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from worker.cli import main

EXITS = {"disable": [{"code": 2, "exitOptions": {"jobAction": "disable"}}]}


def bash(script: str) -> str:
    return "/bin/bash -c %s" % shlex.quote(script)


def task(task_id: str, script: str, **extra: Any) -> Dict[str, Any]:
    return dict({"id": task_id, "commandLine": bash(script)}, **extra)


def write_job(folder: Path, tasks: List[Dict[str, Any]], slots: int = 2,
              start_task: Optional[Dict[str, Any]] = None, **job: Any) -> Path:
    props: Dict[str, Any] = {"taskSlotsPerNode": slots}
    if start_task:
        props["startTask"] = start_task
    pool = {"resources": [{"type": "Microsoft.Batch/batchAccounts/pools",
                           "name": "acct/pool1", "properties": props}]}
    documents = {"pool.json": pool,
                 "job.json": dict({"id": "job1", "poolInfo": {"poolId": "pool1"}}, **job),
                 "tasks-001.json": tasks}
    specs = folder / "specs"
    specs.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (specs / name).write_text(json.dumps(document))
    return specs


def local_batch(tmp_path: Path, specs: Path, *options: str) -> Dict[str, Any]:
    """Run local-batch in-process; the report, with its exit code."""
    report = tmp_path / "report.json"
    code = main(["local-batch", "--specs", str(specs), "--root", str(tmp_path / "node"),
                 "--report", str(report), *options])
    document = json.loads(report.read_text())
    assert document["exit_code"] == code
    document["by_id"] = {t["id"]: t for t in document["tasks"]}
    return document


def test_every_task_succeeds_and_the_run_exits_0(tmp_path, capsys):
    specs = write_job(tmp_path, [task("1", "echo one"), task("2", "echo two >&2")])
    report = local_batch(tmp_path, specs)
    assert report["exit_code"] == 0
    assert [(t["id"], t["state"], t["exit_code"], t["attempts"]) for t in report["tasks"]] == [
        ("1", "succeeded", 0, 1), ("2", "succeeded", 0, 1)]
    folder = Path(report["by_id"]["2"]["task_dir"])
    assert folder == tmp_path / "node" / "workitems" / "job1" / "job-1" / "2"
    assert (folder / "stderr.txt").read_text() == "two\n"
    assert (folder / "wd").is_dir()
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["task", "state", "exit", "attempts", "duration"]
    assert out[1].split()[:4] == ["1", "succeeded", "0", "1"]
    assert out[-1].startswith("local-batch: job job1: 2 of 2 tasks succeeded; report ")


def test_a_task_gets_every_batch_variable_and_the_environment_layers(tmp_path):
    script = "env > ../env.txt"
    specs = write_job(tmp_path, [task("t1", script, environmentSettings=[
        {"name": "FROM_TASK", "value": "task"}, {"name": "BOTH", "value": "task"}])],
        commonEnvironmentSettings=[{"name": "FROM_JOB", "value": "job"},
                                   {"name": "BOTH", "value": "job"},
                                   {"name": "OVERRIDDEN", "value": "job"}])
    report = local_batch(tmp_path, specs, "--env", "OVERRIDDEN=cli")
    assert report["exit_code"] == 0
    folder = Path(report["by_id"]["t1"]["task_dir"])
    env = dict(line.split("=", 1) for line in (folder / "env.txt").read_text().splitlines()
               if "=" in line)
    root = tmp_path / "node"
    assert {k: v for k, v in env.items() if k.startswith("AZ_BATCH_")} == {
        "AZ_BATCH_ACCOUNT_NAME": "acct",
        "AZ_BATCH_ACCOUNT_URL": "https://acct.localbatch.invalid",
        "AZ_BATCH_POOL_ID": "pool1",
        "AZ_BATCH_NODE_ID": "tvmps_localbatch_d",
        "AZ_BATCH_NODE_IS_DEDICATED": "true",
        "AZ_BATCH_NODE_ROOT_DIR": str(root),
        "AZ_BATCH_NODE_SHARED_DIR": str(root / "shared"),
        "AZ_BATCH_NODE_STARTUP_DIR": str(root / "startup"),
        "AZ_BATCH_NODE_MOUNTS_DIR": str(root / "fsmounts"),
        "AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": "1000000000",
        "AZ_BATCH_JOB_ID": "job1",
        "AZ_BATCH_TASK_ID": "t1",
        "AZ_BATCH_TASK_DIR": str(folder),
        "AZ_BATCH_TASK_WORKING_DIR": str(folder / "wd"),
    }
    assert (env["FROM_JOB"], env["FROM_TASK"], env["BOTH"], env["OVERRIDDEN"]) == (
        "job", "task", "task", "cli")
    assert env["HOME"] == str(root / "home")


def test_tasks_share_the_slots_and_a_two_slot_task_runs_alone(tmp_path):
    """1 and 2 can only finish if they run at the same time (each waits for the other's
    marker); 3 needs both slots and finds no marker of a running task."""
    def meet(me: str, other: str) -> str:
        return ("touch ../../%s.run; for i in $(seq 200); do [ -e ../../%s.run ] && break; "
                "sleep 0.05; done; [ -e ../../%s.run ] || exit 9; sleep 0.2; rm ../../%s.run"
                % (me, other, other, me))

    specs = write_job(tmp_path, [task("1", meet("1", "2")), task("2", meet("2", "1")),
                                 task("3", "ls ../../*.run && exit 8; exit 0",
                                      requiredSlots=2)])
    report = local_batch(tmp_path, specs)
    assert [t["state"] for t in report["tasks"]] == ["succeeded"] * 3, report


def test_a_failure_is_retried_in_the_same_folder_up_to_max_task_retry_count(tmp_path):
    script = "n=$(cat ../count 2>/dev/null || echo 0); echo $((n+1)) | tee ../count; exit 3"
    specs = write_job(tmp_path, [task("1", script, constraints={"maxTaskRetryCount": 2})])
    report = local_batch(tmp_path, specs)
    assert report["exit_code"] == 34
    one = report["by_id"]["1"]
    assert (one["state"], one["exit_code"], one["attempts"]) == ("failed", 3, 3)
    folder = Path(one["task_dir"])
    assert (folder / "count").read_text() == "3\n"
    # Batch overwrites stdout.txt at each run; the local node keeps the earlier ones
    assert [(folder / n).read_text() for n in ("stdout.1.txt", "stdout.2.txt", "stdout.txt")
            ] == ["1\n", "2\n", "3\n"]


@pytest.mark.parametrize("action, merge_state", [("satisfy", "succeeded"),
                                                 ("block", "blocked")])
def test_a_failed_task_satisfies_or_blocks_its_dependents(tmp_path, action, merge_state):
    exits = {"exitCodes": [{"code": 4, "exitOptions": {"jobAction": "none",
                                                       "dependencyAction": action}}]}
    specs = write_job(tmp_path, [
        task("1", "exit 0"), task("2", "exit 4", exitConditions=exits),
        task("merge", "echo merged", dependsOn={"taskIdRanges": [{"start": 1, "end": 2}]}),
        task("after", "exit 0", dependsOn={"taskIds": ["merge"]}),
    ], usesTaskDependencies=True, onTaskFailure="performexitoptionsjobaction")
    report = local_batch(tmp_path, specs)
    assert report["exit_code"] == 34
    states = {t["id"]: t["state"] for t in report["tasks"]}
    assert states == {"1": "succeeded", "2": "failed", "merge": merge_state,
                      "after": merge_state}
    assert report["by_id"]["2"]["dependency_action"] == action
    if action == "block":
        assert report["by_id"]["merge"]["failure"] == (
            "a task it depends on failed with dependencyAction block")


def test_batch_defaults_block_dependents_and_terminate_the_job(tmp_path):
    """No exitConditions: a failure blocks (dependencyAction) and, with
    performexitoptionsjobaction, terminates the job (jobAction)."""
    specs = write_job(tmp_path, [task("1", "exit 1"), task("2", "exit 0"),
                                 task("3", "exit 0", dependsOn={"taskIds": ["1"]})],
                      slots=1, usesTaskDependencies=True,
                      onTaskFailure="performexitoptionsjobaction")
    report = local_batch(tmp_path, specs)
    assert {t["id"]: t["state"] for t in report["tasks"]} == {
        "1": "failed", "2": "not_run", "3": "blocked"}
    assert report["job_state"] == "terminated by task 1 (exit 1)"


def test_exit_2_disables_the_job_and_requeues_what_runs(tmp_path):
    specs = write_job(tmp_path, [
        task("long", "sleep 60"),
        task("config", "sleep 0.3; exit 2", exitConditions={"exitCodes": EXITS["disable"]}),
        task("later", "exit 0"),
    ], onTaskFailure="performexitoptionsjobaction")
    report = local_batch(tmp_path, specs)
    assert {t["id"]: t["state"] for t in report["tasks"]} == {
        "long": "not_run", "config": "failed", "later": "not_run"}
    assert report["job_state"] == "disabled by task config (exit 2)"
    assert report["by_id"]["long"]["failure"] == (
        "requeued: the job was disabled by task config (exit 2)")


def test_a_task_past_its_max_wall_clock_time_is_killed_with_its_group(tmp_path):
    script = "sleep 60 & echo $! > ../child; wait"
    specs = write_job(tmp_path, [task("slow", script, constraints={
        "maxWallClockTime": "PT1S", "maxTaskRetryCount": 3})])
    report = local_batch(tmp_path, specs)
    slow = report["by_id"]["slow"]
    assert (slow["state"], slow["exit_code"], slow["attempts"]) == ("timed_out", -9, 1)
    assert slow["failure"] == "killed (SIGKILL) past its maxWallClockTime PT1S"
    child = int((Path(slow["task_dir"]) / "child").read_text())
    assert _gone(child)


def test_a_recovered_task_is_killed_and_run_again_without_counting_a_retry(tmp_path):
    script = "if [ -e ../ran ]; then echo second; exit 0; fi; touch ../ran; echo first; sleep 60"
    specs = write_job(tmp_path, [task("1", script)])
    report = local_batch(tmp_path, specs, "--recover", "1=stdout:first")
    one = report["by_id"]["1"]
    assert (one["state"], one["attempts"], one["requeues"]) == ("succeeded", 2, 1)
    folder = Path(one["task_dir"])
    assert (folder / "stdout.1.txt").read_text() == "first\n"
    assert (folder / "stdout.txt").read_text() == "second\n"


def test_a_terminated_task_gets_sigterm_and_ends_terminated(tmp_path):
    script = "trap 'echo got TERM; exit 143' TERM; echo ready; sleep 60 & wait"
    specs = write_job(tmp_path, [task("1", script, constraints={"maxTaskRetryCount": 2})])
    report = local_batch(tmp_path, specs, "--terminate", "1=stdout:ready")
    one = report["by_id"]["1"]
    assert (one["state"], one["exit_code"], one["attempts"]) == ("terminated", 143, 1)
    assert (Path(one["task_dir"]) / "stdout.txt").read_text() == "ready\ngot TERM\n"


def test_the_start_task_is_retried_then_leaves_the_node_unusable(tmp_path, capsys):
    start = {"commandLine": bash("echo try >> \"$AZ_BATCH_NODE_STARTUP_DIR/tries\"; exit 7"),
             "maxTaskRetryCount": 1, "waitForSuccess": True}
    specs = write_job(tmp_path, [task("1", "exit 0")], start_task=start)
    report = local_batch(tmp_path, specs)
    assert report["exit_code"] == 35
    assert report["start_task"] == [{"boot": "boot", "exit_code": 7, "tries": 2,
                                     "duration_s": report["start_task"][0]["duration_s"],
                                     "error": None}]
    assert (tmp_path / "node" / "startup" / "tries").read_text() == "try\ntry\n"
    assert report["by_id"]["1"]["state"] == "not_run"
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["(start", "task,", "boot)", "failed", "7", "2", "0.1s"] or \
        out[1].split()[:6] == ["(start", "task,", "boot)", "failed", "7", "2"]
    assert out[-1].startswith("local-batch: job job1: 0 of 1 tasks succeeded (job not "
                              "started: the start task failed); report ")


def test_the_start_task_gets_its_variables_and_runs_again_at_a_reboot(tmp_path):
    script = ("env | grep -E '^(AZ_BATCH_|FROM_POOL)' | sort > \"$AZ_BATCH_NODE_STARTUP_DIR/"
              "env.$(ls \"$AZ_BATCH_NODE_STARTUP_DIR\" | grep -c env)\"")
    start = {"commandLine": bash(script), "waitForSuccess": True,
             "environmentSettings": [{"name": "FROM_POOL", "value": "pool"}]}
    specs = write_job(tmp_path, [task("1", "exit 0")], start_task=start)
    report = local_batch(tmp_path, specs, "--reboot")
    assert [(s["boot"], s["exit_code"]) for s in report["start_task"]] == [
        ("boot", 0), ("reboot", 0)]
    startup = tmp_path / "node" / "startup"
    first = (startup / "env.0").read_text()
    assert first == (startup / "env.1").read_text()
    assert "AZ_BATCH_TASK_WORKING_DIR=%s/wd\n" % startup in first
    assert "FROM_POOL=pool\n" in first
    assert "AZ_BATCH_JOB_ID" not in first and "AZ_BATCH_TASK_ID" not in first


def test_without_wait_for_success_tasks_run_beside_the_start_task(tmp_path):
    """The start task waits for the task's marker: it only ends if the task ran first."""
    marker = tmp_path / "task-ran"
    start = {"commandLine": bash("for i in $(seq 400); do [ -e %s ] && exit 0; sleep 0.05; "
                                 "done; exit 9" % marker), "waitForSuccess": False}
    specs = write_job(tmp_path, [task("1", "touch %s" % marker)], start_task=start)
    report = local_batch(tmp_path, specs)
    assert report["exit_code"] == 0
    assert [(s["boot"], s["exit_code"]) for s in report["start_task"]] == [("boot", 0)]


def test_sigterm_to_local_batch_terminates_the_running_tasks(tmp_path):
    """A subprocess: local-batch gets SIGTERM while its task runs."""
    import signal
    import subprocess
    import sys
    import time

    script = "trap 'exit 143' TERM; echo up; sleep 60 & wait"
    specs = write_job(tmp_path, [task("1", script)])
    process = subprocess.Popen([sys.executable, "-m", "worker", "local-batch", "--specs",
                                str(specs), "--root", str(tmp_path / "node")],
                               stdout=subprocess.PIPE, text=True)
    stdout = tmp_path / "node" / "workitems" / "job1" / "job-1" / "1" / "stdout.txt"
    deadline = time.monotonic() + 60
    while not (stdout.exists() and stdout.read_text() == "up\n"):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 143
    report = json.loads((tmp_path / "node" / "report.json").read_text())
    assert (report["tasks"][0]["state"], report["tasks"][0]["exit_code"]) == ("terminated", 143)
    assert "job stopped: local-batch got a signal" in out


@pytest.mark.parametrize("tasks, job, code, message", [
    ([task("a", "true", dependsOn={"taskIds": ["b"]}),
      task("b", "true", dependsOn={"taskIds": ["c"]}),
      task("c", "true", dependsOn={"taskIds": ["a"]})], {"usesTaskDependencies": True}, 32,
     "local-batch: error: tasks depend on each other in a cycle (a -> b -> c -> a, each "
     "waiting for the next): none of them can ever run; remove one of these dependencies"),
    ([task("a", "true", dependsOn={"taskIds": ["nope"]})], {"usesTaskDependencies": True}, 33,
     "local-batch: error: task a depends on task 'nope', which the job does not have"),
    ([task("m", "true", dependsOn={"taskIdRanges": [{"start": 1, "end": 9}]})],
     {"usesTaskDependencies": True}, 33,
     "local-batch: error: task m depends on tasks 1-9, and the job has none of them"),
    ([task("bad id!", "true")], {}, 31,
     "local-batch: error: task id 'bad id!' is not one Batch takes: 1 to 64 letters, digits, "
     "'-' and '_'"),
    ([task("x" * 65, "true")], {}, 31, None),
    ([task("a", "true"), task("A", "true")], {}, 31,
     "local-batch: error: task id 'A' is used twice in job job1 (ids are case-insensitive)"),
    ([task("a", "true", dependsOn={"taskIds": ["b"]}), task("b", "true")], {}, 2,
     "local-batch: error: task a has dependsOn but job job1 does not set usesTaskDependencies "
     "(Batch refuses it: TaskDependenciesNotSpecifiedOnJob)"),
    ([task("a", "true", requiredSlots=3)], {}, 2,
     "local-batch: error: task a needs 3 slots but the pool's nodes have 2 "
     "(taskSlotsPerNode): it could never run"),
    ([{"id": "a", "commandLine": "echo 'unbalanced"}], {}, 2,
     "local-batch: error: task a: its commandLine cannot be split into words (No closing "
     "quotation)"),
    ([task("a", "true", constraints={"maxWallClockTime": "10 minutes"})], {}, 2,
     "local-batch: error: task a maxWallClockTime '10 minutes' is not an ISO 8601 duration "
     "such as PT10M"),
])
def test_documents_a_batch_would_refuse_are_one_line_with_their_code(
        tmp_path, capsys, tasks, job, code, message):
    specs = write_job(tmp_path, tasks, **job)
    assert main(["local-batch", "--specs", str(specs), "--root", str(tmp_path / "node")]
                ) == code
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    if message:
        assert err == message + "\n"
    assert not (tmp_path / "node").exists()  # refused before anything ran


@pytest.mark.parametrize("options, message", [
    (["--recover", "9=1"], "--recover 9=...: the job has no task '9'"),
    (["--recover", "1"], "--recover '1': expected TASK_ID=SECONDS or TASK_ID=stderr:TEXT"),
    (["--terminate", "1=soon"], "--terminate '1=soon': 'soon' is neither seconds nor "
                                "stderr:TEXT / stdout:TEXT"),
    (["--env", "NOVALUE"], "--env 'NOVALUE': expected NAME=VALUE"),
    (["--secrets", "s.json"], "--lake-dir and --secrets seed the emulators: add --emulators"),
    (["--package", "missing.zip"], None),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, options, message):
    specs = write_job(tmp_path, [task("1", "true")])
    assert main(["local-batch", "--specs", str(specs), "--root", str(tmp_path / "node"),
                 *options]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err == "local-batch: error: %s\n" % message if message else "missing.zip" in err


def test_a_reference_to_a_package_not_given_is_refused(tmp_path, capsys):
    specs = write_job(tmp_path, [task("1", "true", applicationPackageReferences=[
        {"applicationId": "sales", "version": "2.0"}])])
    assert main(["local-batch", "--specs", str(specs), "--root", str(tmp_path / "node")]) == 2
    assert capsys.readouterr().err == (
        "local-batch: error: the documents reference application package sales version 2.0, "
        "and no --package is that one (given: none): pass its zip with --package\n")


def _gone(pid: int, patience: float = 10.0) -> bool:
    """The process is gone (or a zombie) within ``patience`` (a kill is asynchronous)."""
    import time

    deadline = time.monotonic() + patience
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: it only waits for its parent
        return Path("/proc/%d/stat" % pid).read_text().split()[2] != "Z"
    except OSError:
        return False


# -- the reasons a task did not succeed (issue 28) ---------------------------------------------

def test_the_table_gives_each_failed_task_its_one_line_reason(tmp_path, capsys):
    specs = write_job(tmp_path, [
        task("ok", "exit 0"),
        task("bad", "echo noise >&2; echo 'task failed: exit 4 (bad input data)' >&2; exit 4"),
        task("quiet", "exit 5"),
        task("harness", "echo '2026-12-04T17:26:09.713Z ERROR j/harness worker: task failed "
                        "after 0.15s: exit 4 (bad input data, retrying will not help): "
                        "RepeatedFailure: raw/x.csv row 7 has no amount; not run again' >&2; "
                        "exit 4"),
    ])
    report = local_batch(tmp_path, specs, "--env", "WORKER_LAKE_URL=file:///tmp/lake")
    assert report["by_id"]["bad"]["reason"] == "exit 4: task failed: exit 4 (bad input data)"
    # the harness's own line: its preamble left out, so the cause fits the column
    assert report["by_id"]["harness"]["reason"] == (
        "exit 4: RepeatedFailure: raw/x.csv row 7 has no amount; not run again")
    assert report["by_id"]["quiet"]["reason"] == "exit 5"
    assert report["by_id"]["ok"]["reason"] is None
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["task", "state", "exit", "attempts", "duration", "reason"]
    assert out[2].split()[:2] == ["bad", "failed"]
    assert out[2].endswith("exit 4: task failed: exit 4 (bad input data)")
    assert out[3].endswith("exit 5")


def test_a_disabled_job_tells_the_failed_task_from_the_requeued_and_never_run(tmp_path, capsys):
    """The issue's case: one task exits 2 (the job is disabled), the others are requeued or
    never ran, and the merge, whose dependencies satisfy it even when they fail, is not
    reported as blocked: it never ran because the job was disabled."""
    satisfy = {"exitCodes": [{"code": 2, "exitOptions": {"jobAction": "disable",
                                                         "dependencyAction": "satisfy"}}]}
    specs = write_job(tmp_path, [
        task("1", "sleep 60", exitConditions=satisfy),
        task("2", "sleep 0.3; echo 'no such setting' >&2; exit 2", exitConditions=satisfy),
        task("3", "exit 0", exitConditions=satisfy),
        task("merge", "exit 0", dependsOn={"taskIdRanges": [{"start": 1, "end": 3}]}),
    ], slots=2, usesTaskDependencies=True, onTaskFailure="performexitoptionsjobaction")
    report = local_batch(tmp_path, specs, "--env", "WORKER_LAKE_URL=file:///tmp/lake")
    states = {t["id"]: (t["state"], t["reason"]) for t in report["tasks"]}
    assert states == {
        "1": ("not_run", "requeued: the job was disabled by task 2 (exit 2)"),
        "2": ("failed", "exit 2: no such setting"),
        "3": ("not_run", "the job was disabled by task 2 (exit 2)"),
        "merge": ("not_run", "the job was disabled by task 2 (exit 2)"),
    }
    assert report["by_id"]["1"]["requeues"] == 1


def test_a_blocked_task_names_the_task_that_blocks_it(tmp_path):
    specs = write_job(tmp_path, [task("1", "exit 3"),
                                 task("2", "exit 0", dependsOn={"taskIds": ["1"]})],
                      usesTaskDependencies=True)
    report = local_batch(tmp_path, specs, "--env", "WORKER_LAKE_URL=file:///tmp/lake")
    assert report["by_id"]["2"]["reason"] == (
        "blocked: task 1 failed (exit 3) and its dependencyAction is block")


@pytest.mark.parametrize("options, hinted", [
    ((), True),
    (("--env", "WORKER_LAKE_URL=file:///tmp/lake"), False),
    (("--env", "WORKER_LAKE_URL=file:///tmp/lake", "--env",
      "WORKER_VAULT_URL=https://my-vault.vault.azure.net"), True),
])
def test_without_a_local_lake_the_first_failure_names_emulators_and_env(
        tmp_path, capsys, options, hinted):
    """The job's lake is Azure's (as `spec` writes it): on this machine the tasks fail, and
    the first failure says how to give them a lake here."""
    specs = write_job(tmp_path, [task("1", "exit 2"), task("2", "exit 3")],
                      commonEnvironmentSettings=[
                          {"name": "WORKER_LAKE_URL",
                           "value": "abfss://data@mydatalake.dfs.core.windows.net/"}])
    report = local_batch(tmp_path, specs, *options)
    hint = ("this machine gave the tasks no lake or vault of its own: add --emulators (a local "
            "lake, vault and identity), or --env WORKER_LAKE_URL=... and --env "
            "WORKER_VAULT_URL=...")
    first, second = report["by_id"]["1"]["reason"], report["by_id"]["2"]["reason"]
    assert first == ("exit 2; " + hint if hinted else "exit 2")
    assert second == "exit 3"
    assert (hint in capsys.readouterr().out) == hinted
