"""Runs of the pipeline with 20% of the emulators' answers faulty (503, 500, 429 with
Retry-After, bodies cut short, connections dropped; seeded): every run exits 0 or 3; every
exit-0 run's outputs are byte-identical to a fault-free run's; every exit-3 run left nothing
at its final paths, and its rerun without faults succeeds and leaves no staging."""

from __future__ import annotations

import collections

from reliability_support import (
    outputs,
    pipeline_args,
    run,
    scale,
    seed_inputs,
    staging,
    task_env,
)

#: Five kinds, each firing with this probability in turn: about 20% of requests are hit.
P_EACH = 1 - 0.8 ** (1 / 5)
KINDS = [
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 429, "retry_after": 0.05},
    {"kind": "truncate"},
    {"kind": "drop"},
]


def test_faulty_runs_exit_0_or_3_and_never_leave_part_of_their_outputs(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    seed_inputs(emulators, emulator_filesystem)
    reference = _run_clean(emulators, emulator_filesystem, emulator_env, tmp_path, "ref")
    emulators.set.faults.reseed(20261127)
    for rule in KINDS:
        emulators.fault("*", "*", times=None, probability=P_EACH, **rule)
    codes = collections.Counter()
    failed = []
    for i in range(scale(12, 100)):
        name = f"r{i:03d}"
        proc = run(pipeline_args(name), task_env(emulator_env, tmp_path, "faults", name))
        codes[proc.returncode] += 1
        assert proc.returncode in (0, 3), proc.stderr[-2000:]
        found = outputs(emulators, emulator_filesystem, name)
        if proc.returncode == 0:
            assert found == reference, f"{name}: outputs differ from the fault-free run"
        else:
            assert found == {}, f"{name} exited 3 and left {sorted(found)} at final paths"
            failed.append(name)
    emulators.clear_faults()
    for name in failed:  # Batch's retry: the same task, no faults this time
        proc = run(pipeline_args(name), task_env(emulator_env, tmp_path, "faults", name))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert outputs(emulators, emulator_filesystem, name) == reference
    assert staging(emulators, emulator_filesystem) == []
    print(f"\nfault runs: {dict(codes)}; reruns of the exit-3 runs all succeeded")


def _run_clean(emulators, filesystem, env, tmp_path, name):
    proc = run(pipeline_args(name), task_env(env, tmp_path, "faults", name))
    assert proc.returncode == 0, proc.stderr
    found = outputs(emulators, filesystem, name)
    assert len(found) == 5
    return found
