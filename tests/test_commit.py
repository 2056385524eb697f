"""The commit protocol (worker.lake.commit) on both backends: all outputs or none, reruns that
finish what a killed run left, conflicts with their own error, and no staging left behind.

Failures are real: the Data Lake emulator's fault rules make renames fail (a rule that
serves the first N requests of an operation, then one that fails the rest), and every check
of the lake's state goes through a second, independent view of the same root.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import pytest

from worker.config import Config
from worker.errors import CommitConflict, RetryableError
from worker.lake import STAGING_DIR, Lake, open_store
from worker.lake.commit import CLAIMS_DIR, Output, _claim_key

FAST = {"WORKER_RETRY_BACKOFF": "0", "WORKER_RETRY_TOTAL": "1"}


@pytest.fixture(params=["local", "azure"])
def config(request, tmp_path):
    if request.param == "local":
        env = dict(FAST, WORKER_LAKE_URL=(tmp_path / "lake").as_uri())
    else:
        env = dict(os.environ, **request.getfixturevalue("emulator_environ"), **FAST)
    return Config.from_env(env)


@pytest.fixture
def azure(emulators, emulator_environ):
    return Config.from_env(dict(os.environ, **emulator_environ, **FAST)), emulators


def lake_of(config, task="job/task-1", run=None, concurrency=4) -> Lake:
    return Lake(open_store(config.lake_url, config=config), task, run_id=run,
                concurrency=concurrency)


def state(config, *paths):
    """What an independent reader sees at ``paths`` (None where nothing is)."""
    view = lake_of(config, "reader")
    found = {p: view.read_text(p) if view.exists(p) else None for p in paths}
    view.close()
    return found


def staging_left(config):
    view = lake_of(config, "reader")
    try:
        return [e.path for e in view.store.list(STAGING_DIR, recursive=True)]
    except FileNotFoundError:
        return []
    finally:
        view.close()


def commit_texts(config, texts, task="job/task-1", overwrite=True, run=None):
    lake = lake_of(config, task, run)
    try:
        for path, text in texts.items():
            lake.write_text(path, text, overwrite=overwrite)
        return lake.commit()
    finally:
        lake.abort()
        lake.close()


def test_outputs_are_staged_under_the_task_and_nothing_is_left_after_the_commit(config):
    lake = lake_of(config, "job-7/task-3", "2-abcd")
    lake.write_text("out/a.txt", "a")
    assert staging_left(config) == [f"{STAGING_DIR}/job-7", f"{STAGING_DIR}/job-7/task-3",
                                    f"{STAGING_DIR}/job-7/task-3/2-abcd",
                                    f"{STAGING_DIR}/job-7/task-3/2-abcd/out",
                                    f"{STAGING_DIR}/job-7/task-3/2-abcd/out/a.txt"]
    lake.write_text("out/b.txt", "b")
    lake.commit()
    lake.close()
    assert state(config, "out/a.txt", "out/b.txt") == {"out/a.txt": "a", "out/b.txt": "b"}
    assert staging_left(config) == []


def test_a_rerun_with_overwrite_false_and_the_same_content_succeeds(config):
    texts = {"out/a.txt": "a", "out/b.txt": "b"}
    commit_texts(config, texts, overwrite=False)
    outputs = commit_texts(config, texts, overwrite=False)  # the same task, run again
    assert [o["path"] for o in outputs] == ["out/a.txt", "out/b.txt"]
    assert state(config, *texts) == texts
    assert staging_left(config) == []


def test_overwrite_false_over_another_tasks_content_is_a_conflict_that_leaves_nothing(config):
    commit_texts(config, {"out/b.txt": "theirs"}, task="job/other")
    with pytest.raises(CommitConflict, match="'out/b.txt' exists .* with other content") as e:
        commit_texts(config, {"out/a.txt": "mine", "out/b.txt": "mine"}, overwrite=False)
    assert e.value.exit_code == 5
    # out/a.txt was new and may have been moved first: it was rolled back with the rest
    assert state(config, "out/a.txt", "out/b.txt") == {"out/a.txt": None, "out/b.txt": "theirs"}
    assert staging_left(config) == []


def test_a_new_folder_of_outputs_moves_in_one_rename(azure):
    config, emulators = azure
    commit_texts(config, {"old/x.txt": "x"})
    lake = lake_of(config)
    for i in range(6):
        lake.write_text(f"curated/by_day/day={i}/part-0.txt", str(i))
    lake.write_text("old/y.txt", "y")
    emulators.reset_counts()
    lake.commit()
    lake.close()
    # curated/ is new: one rename for its six files; old/ exists: old/y.txt on its own
    assert emulators.counts("lake")["rename"] == 2
    assert state(config, "curated/by_day/day=5/part-0.txt") == {
        "curated/by_day/day=5/part-0.txt": "5"}


def test_a_failure_mid_commit_rolls_back_to_the_previous_versions(azure):
    config, emulators = azure
    before = {"out/a.txt": "old a", "out/b.txt": "old b", "out/c.txt": "old c"}
    commit_texts(config, before, task="job/yesterday")
    lake = lake_of(config, concurrency=1)
    for path in before:
        lake.write_text(path, path.replace("out/", "new "))
    lake.write_text("out/d.txt", "new d")
    # replacing a file is three renames (the conditional one that finds it, the old one
    # aside, the new one in): out/a.txt is replaced, then out/b.txt's first rename fails
    # with its one retry
    emulators.fault("lake", "rename", "latency", delay=0, times=3)
    emulators.fault("lake", "rename", "status", status=500, times=2)
    with pytest.raises(RetryableError, match="500"):
        lake.commit()
    lake.abort()
    lake.close()
    assert state(config, *before, "out/d.txt") == dict(before, **{"out/d.txt": None})
    assert staging_left(config) == []


def stop_mid_commit(config, emulators, texts, moved=2):
    """A commit of ``texts`` (root-level files: one rename each) that stops after ``moved``
    renames: then every rename fails, so the roll-back cannot run either, as when the
    process is killed. The commit record stays "committing"."""
    lake = lake_of(config, concurrency=1)
    for path, text in texts.items():
        lake.write_text(path, text)
    emulators.fault("lake", "rename", "latency", delay=0, times=moved)
    emulators.fault("lake", "rename", "status", status=500, times=None)
    with pytest.raises(RetryableError):
        lake.commit()
    lake.close()
    emulators.clear_faults()
    assert sum(v is not None for v in state(config, *texts).values()) == moved


def test_a_run_stopped_mid_commit_is_finished_by_the_next_run(azure):
    config, emulators = azure
    texts = {f"{n}.txt": f"first {n}" for n in "abcd"}
    stop_mid_commit(config, emulators, texts)
    rerun = lake_of(config, run="2-rerun")
    rerun.write_text("a.txt", "second a", overwrite=False)  # finishes the first commit
    assert state(config, *texts) == texts, "rolled forward before the rerun's own writes"
    rerun.commit()  # overwrite=False over its own earlier output: allowed
    rerun.close()
    assert state(config, "a.txt")["a.txt"] == "second a"
    assert staging_left(config) == []


def test_overwrite_false_may_replace_only_the_tasks_own_earlier_output(azure):
    config, emulators = azure
    texts = {"a.txt": "first", "b.txt": "first"}
    stop_mid_commit(config, emulators, texts, moved=1)
    other = lake_of(config, "job/someone-else")
    other.write_text("a.txt", "theirs", overwrite=False)
    with pytest.raises(CommitConflict):  # the first task's outputs are not theirs to replace
        other.commit()
    other.abort()
    other.close()
    commit_texts(config, {"a.txt": "second", "b.txt": "second"}, overwrite=False,
                 run="2-again")
    assert state(config, *texts) == {"a.txt": "second", "b.txt": "second"}
    assert staging_left(config) == []


def test_two_tasks_committing_the_same_outputs_at_once_one_wins(azure):
    config, emulators = azure
    texts = {f"out/{n}.txt": n for n in "abc"}
    # Each of the first commit's renames waits 1 s: the second task's writes and claim
    # (a few requests) fall inside that window even on a busy machine.
    emulators.fault("lake", "rename", "latency", delay=1.0, times=None)
    first = lake_of(config, "job/first", concurrency=1)
    for path in texts:
        first.write_text(path, "first")
    errors = []
    thread = threading.Thread(target=lambda: _commit_into(first, errors))
    thread.start()
    _wait_for_claim(config, texts)
    with pytest.raises(CommitConflict, match="'job/first' is committing the same outputs"):
        commit_texts(config, {p: "second" for p in texts}, task="job/second")
    thread.join(30)
    assert errors == []
    assert set(state(config, *texts).values()) == {"first"}
    assert staging_left(config) == []


def test_an_abandoned_claim_of_another_task_is_taken_over(config):
    texts = {"out/a.txt": "a", "out/b.txt": "b"}
    outputs = [Output(p, "", 0, "", True) for p in texts]
    view = lake_of(config, "reader")
    stale = {"task": "job/gone", "run": "1-x", "at": time.time() - 3600}
    view.store.write_bytes(_claim_key(outputs), json.dumps(stale).encode())
    view.close()
    commit_texts(config, texts)
    assert state(config, *texts) == texts
    assert not any(p.startswith(CLAIMS_DIR + "/") for p in staging_left(config))


def test_an_output_already_there_with_the_same_bytes_is_not_moved_again(azure):
    config, emulators = azure
    commit_texts(config, {"out/a.txt": "same"}, task="job/other")
    emulators.reset_counts()
    commit_texts(config, {"out/a.txt": "same"}, overwrite=False)
    assert emulators.counts("lake")["rename"] == 1  # the conditional rename that found it
    digest = hashlib.md5(b"same").hexdigest()
    view = lake_of(config, "reader")
    assert view.store.content_md5("out/a.txt") == digest
    view.close()


def _commit_into(lake, errors):
    try:
        lake.commit()
    except Exception as e:  # reported to the test thread
        errors.append(e)
    finally:
        lake.close()


def _wait_for_claim(config, texts):
    outputs = [Output(p, "", 0, "", True) for p in texts]
    view = lake_of(config, "reader")
    deadline = time.monotonic() + 20
    while not view.store.exists(_claim_key(outputs)):
        assert time.monotonic() < deadline, "the first commit never claimed its outputs"
        time.sleep(0.02)
    view.close()


def test_one_throttled_rename_is_retried_after_its_retry_after(azure):
    config, emulators = azure
    lake = lake_of(config)
    lake.write_text("out/a.txt", "a")
    emulators.fault("lake", "rename", "status", status=429, retry_after=0.2, times=1)
    emulators.reset_counts()
    started = time.monotonic()
    lake.commit()  # the storage SDK's own policy would give up on the 429 at once
    assert time.monotonic() - started >= 0.2, "waited for Retry-After"
    assert emulators.counts("lake")["rename"] == 2
    lake.close()
    assert state(config, "out/a.txt") == {"out/a.txt": "a"}


def test_an_outputs_source_is_recorded_and_survives_the_commit_record():
    from dataclasses import asdict

    output = Output("out/a.avi", "stg/a.avi", 3, "0f", True, source="in/a.mp4")
    assert output.record() == {"path": "out/a.avi", "bytes": 3, "md5": "0f",
                               "source": "in/a.mp4"}
    assert Output(**json.loads(json.dumps(asdict(output)))) == output  # roll forward reads it
    older = {k: v for k, v in asdict(output).items() if k != "source"}  # a record before it
    assert "source" not in Output(**older).record()


def test_upload_records_its_source_through_the_commit(config, tmp_path):
    (tmp_path / "made").mkdir()
    (tmp_path / "made" / "a.avi").write_bytes(b"avi")
    lake = lake_of(config)
    try:
        lake.upload(str(tmp_path / "made"), "out/avi", source="in/a.mp4")
        lake.write_text("out/plain.txt", "p")
        assert [o.get("source") for o in lake.commit()] == ["in/a.mp4", None]
    finally:
        lake.close()


#: Every lake operation a run writing and committing outputs sends (the big output adds
#: create, append and flush), with how many of its requests pass before one is lost.
LOST_ON = [("put_blob", 0), ("put_blob", 3), ("create", 0), ("create", 2), ("append", 1),
           ("flush", 0), ("rename", 0), ("rename", 1), ("rename", 3), ("delete", 0),
           ("delete", 1), ("delete", 2), ("get_properties", 0), ("get_properties", 2),
           ("read", 0), ("list_paths", 0), ("list_paths", 1)]


@pytest.mark.parametrize("operation, skip", LOST_ON)
@pytest.mark.parametrize("conflict_first", [False, True], ids=["404-first", "409-first"])
def test_an_answer_lost_after_the_service_acted_is_survived(azure, operation, conflict_first,
                                                           skip):
    """The service applies the request and the answer never arrives: the retry meets the
    new state (a delete finds nothing, a rename finds its source gone and its destination
    there, as 404 or as 409), and that counts as done. The commit ends with every output
    in place, nothing else, and no staging left."""
    config, emulators = azure
    config = Config.from_env(dict(config.environ, WORKER_LAKE_CHUNK_SIZE="1024"))
    emulators.lake_behaviour(rename_conflict_first=conflict_first)
    commit_texts(config, {"out/keep.txt": "old", "out/same.txt": "same"}, run="1-first")
    texts = {"out/a.txt": "a", "out/b.txt": "b", "out/keep.txt": "new", "out/same.txt": "same",
             "out/new/x.txt": "x", "out/new/y.txt": "y", "out/big.txt": "z" * 3000}
    emulators.reset_counts()
    if skip:
        emulators.fault("lake", operation, "latency", delay=0, times=skip)
    emulators.fault("lake", operation, "lost", times=1)
    outputs = commit_texts(config, texts, run="2-second")
    assert [o["path"] for o in outputs] == sorted(texts)
    assert state(config, *texts) == texts
    assert staging_left(config) == []
    assert emulators.counts("lake").get(operation, 0) >= skip + 2, "lost, then retried"


def test_a_claim_whose_answer_was_lost_is_this_runs_own(azure, caplog):
    config, emulators = azure
    emulators.fault("lake", "put_blob", "latency", delay=0, times=2)  # the two staged files
    emulators.fault("lake", "put_blob", "lost", times=1)  # the claim
    commit_texts(config, {"out/a.txt": "a", "out/b.txt": "b"})
    assert state(config, "out/a.txt", "out/b.txt") == {"out/a.txt": "a", "out/b.txt": "b"}
    assert "taking over the claim" not in caplog.text


def test_a_delete_whose_answer_was_lost_is_done_and_a_missing_file_still_an_error(azure):
    config, emulators = azure
    commit_texts(config, {"gone.txt": "x"})
    lake = lake_of(config)
    emulators.fault("lake", "delete", "lost", times=1)
    lake.delete("gone.txt")  # the retry's 404: the lost first try deleted it
    assert state(config, "gone.txt") == {"gone.txt": None}
    with pytest.raises(FileNotFoundError, match="'gone.txt'"):
        lake.delete("gone.txt")  # a 404 at the first try: there was nothing
    lake.close()


def test_a_roll_back_that_meets_a_transient_failure_is_run_again(azure):
    """The commit fails (b's rename, with its one retry), and the first round of the roll
    back fails too (a's rename back, with its retry): the next round finishes it, so the
    failed task leaves nothing at the final paths and its record as it was."""
    config, emulators = azure
    texts = {"a.txt": "a", "b.txt": "b", "c.txt": "c"}
    lake = lake_of(config, concurrency=1)
    for path, text in texts.items():
        lake.write_text(path, text)
    emulators.fault("lake", "rename", "latency", delay=0, times=1)  # a.txt moves
    emulators.fault("lake", "rename", "status", status=500, times=4)  # b.txt, then a's undo
    with pytest.raises(RetryableError, match="500"):
        lake.commit()
    lake.abort()
    lake.close()
    assert state(config, *texts) == {p: None for p in texts}
    assert staging_left(config) == []
    assert emulators.counts("lake")["rename"] == 6  # a, b x2, a back x2, a back


def test_a_rename_whose_every_answer_was_lost_is_rolled_back_too(azure):
    """b's rename is applied but neither its answer nor its retry's arrives: the commit
    fails, and the roll-back, which looks before it moves, puts b back with a."""
    config, emulators = azure
    texts = {"a.txt": "a", "b.txt": "b", "c.txt": "c"}
    lake = lake_of(config, concurrency=1)
    for path, text in texts.items():
        lake.write_text(path, text)
    emulators.fault("lake", "rename", "latency", delay=0, times=1)  # a.txt moves
    emulators.fault("lake", "rename", "lost", times=2)  # b.txt moves; no answer reaches us
    with pytest.raises(RetryableError, match="'b.txt'"):
        lake.commit()
    lake.abort()
    lake.close()
    assert state(config, *texts) == {p: None for p in texts}
    assert staging_left(config) == []
