"""A canary secret read from the vault, then logged, printed, written to stderr, warned,
raised, returned and handed to a child process: it occurs nowhere in stdout, stderr,
result.json, the task's folders, the lake (staging and outputs), or the child's command
line (which the child writes down for the test)."""

from __future__ import annotations

import pytest
from reliability_support import run, task_env

CANARY = "canary-5f3a9c1e-do-not-leak"


@pytest.mark.parametrize("where", ["return", "raise"])
def test_a_canary_secret_reaches_no_output(tmp_path, emulators, emulator_filesystem,
                                           emulator_env, where):
    emulators.seed_secret("canary", CANARY)
    env = task_env(emulator_env, tmp_path, "secrets", where)
    proc = run(["run", "handlers.reliability:leaks_canary", "--param", f"where={where}"], env)
    assert proc.returncode == (0 if where == "return" else 1), proc.stderr
    for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        assert CANARY not in text, f"the canary is in {name}"
    for expected in ("printed: ***", "written: ***", "warned: ***", "child: ***",
                     "the canary is ***"):
        assert expected in proc.stdout + proc.stderr, f"{expected!r}: the line itself is kept"
    task_dir = tmp_path / "secrets" / where
    files = [p for p in task_dir.rglob("*") if p.is_file()]
    assert {"result.json", "child-cmdline"} <= {p.name for p in files}
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), f"the canary is in {path}"
    lake = emulators.set.lake_app.store.filesystems[emulator_filesystem].paths
    for path, node in lake.items():
        assert CANARY.encode() not in bytes(node.data or b"") and CANARY not in path
    assert "child:" in proc.stdout
