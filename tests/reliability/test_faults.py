"""Runs of the pipeline with 20% of the emulators' answers faulty (seeded): every run exits 0
or 3 (never 4: a fault is never taken for missing data); every exit-0 run's outputs are
byte-identical to a fault-free run's; every exit-3 run left nothing at its final paths,
and its rerun without faults succeeds and leaves no staging.

Two mixes: every kind of fault (503, 500, 429 with Retry-After, bodies cut short,
connections dropped before the request is applied, answers lost after it was applied,
answers late), and lost answers alone at 20% of every request, with a retried conditional
rename answered 404 (the emulator's order) or 409 (the other order Azure might use). Half
the runs write into a folder that exists already, so their outputs move one by one (each a
conditional rename) rather than as one folder."""

from __future__ import annotations

import collections

import pytest
from reliability_support import (
    outputs,
    pipeline_args,
    run,
    scale,
    seed_inputs,
    staging,
    task_env,
)

#: Seven kinds, each firing with this probability in turn: about 20% of requests are hit.
P_EACH = 1 - 0.8 ** (1 / 7)
KINDS = [
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 429, "retry_after": 0.05},
    {"kind": "truncate"},
    {"kind": "drop"},
    {"kind": "lost"},
    {"kind": "late", "delay": 0.05},
]


def test_faulty_runs_exit_0_or_3_and_never_leave_part_of_their_outputs(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    def faults():
        for rule in KINDS:
            emulators.fault("*", "*", times=None, probability=P_EACH, **rule)

    _fault_runs(tmp_path, emulators, emulator_filesystem, emulator_env, faults, "faults",
                20261127)


@pytest.mark.parametrize("conflict_first", [False, True], ids=["404-first", "409-first"])
def test_with_a_fifth_of_the_answers_lost_runs_are_whole_or_absent(
        tmp_path, emulators, emulator_filesystem, emulator_env, conflict_first):
    def faults():
        emulators.lake_behaviour(rename_conflict_first=conflict_first)
        emulators.fault("lake", "*", "lost", times=None, probability=0.2)

    _fault_runs(tmp_path, emulators, emulator_filesystem, emulator_env, faults, "lost",
                20261204 + conflict_first)


def _fault_runs(tmp_path, emulators, filesystem, env, add_faults, job, seed):
    seed_inputs(emulators, filesystem)
    reference = _run_clean(emulators, filesystem, env, tmp_path, job)
    emulators.set.faults.reseed(seed)
    add_faults()
    codes = collections.Counter()
    failed = []
    for i in range(scale(12, 100)):
        name = f"r{i:03d}"
        if i % 2:  # outputs into an existing folder: one conditional rename each
            emulators.seed_file(filesystem, f"out/{name}/_existing", b"")
        proc = run(pipeline_args(name), task_env(env, tmp_path, job, name))
        codes[proc.returncode] += 1
        assert proc.returncode in (0, 3), proc.stderr[-2000:]
        found = outputs(emulators, filesystem, name)
        if proc.returncode == 0:
            assert found == reference, f"{name}: outputs differ from the fault-free run"
        else:
            assert found == {}, (f"{name} exited 3 and left {sorted(found)} at final paths\n"
                                 + proc.stderr[-4000:])
            failed.append(name)
    emulators.clear_faults()
    for name in failed:  # Batch's retry: the same task, no faults this time
        proc = run(pipeline_args(name), task_env(env, tmp_path, job, name))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert outputs(emulators, filesystem, name) == reference
    assert staging(emulators, filesystem) == []
    print(f"\n{job} runs: {dict(codes)}; reruns of the exit-3 runs all succeeded")


def _run_clean(emulators, filesystem, env, tmp_path, job):
    proc = run(pipeline_args("ref"), task_env(env, tmp_path, job, "ref"))
    assert proc.returncode == 0, proc.stderr
    found = outputs(emulators, filesystem, "ref")
    assert len(found) == 5
    return found
