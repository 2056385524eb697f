"""Handlers for the reliability suite (tests/reliability): a small pipeline whose outputs are
a pure function of its inputs, so every successful run can be compared byte for byte."""

import json
import os
import subprocess
import sys
import time
import warnings


def pipeline(ctx, run, outputs="5", overwrite="yes", hold="", tag=""):
    """Read inputs/*.csv and the secret ``pipeline-key``; write ``outputs`` files below
    out/<run>/ (one per input row group, a summary last). ``hold``: a file to wait for
    before returning (a test kills the task there)."""
    key = ctx.secrets["pipeline-key"]
    rows = []
    for path in ctx.lake.glob("inputs/*.csv"):
        rows += [line.split(",") for line in ctx.lake.read_text(path).splitlines()[1:]]
    count = int(outputs)
    for i in range(count - 1):
        part = rows[i::count - 1]
        total = sum(float(r[1]) for r in part)
        body = json.dumps({"part": i, "rows": len(part), "total": round(total, 2)})
        ctx.lake.write_text(f"out/{run}/part-{i:03d}.json", body + "\n",
                            overwrite=overwrite == "yes")
    summary = {"rows": len(rows), "parts": count - 1, "key_length": len(key), "tag": tag}
    ctx.lake.write_text(f"out/{run}/summary.json", json.dumps(summary) + "\n",
                        overwrite=overwrite == "yes")
    while hold and not os.path.exists(hold):
        time.sleep(0.01)
    return summary


def leaks_canary(ctx, where):
    """Does every careless thing with a secret; ``where`` says which way it leaves."""
    value = ctx.secrets["canary"]
    ctx.log.info("the canary is %s", value)
    print("printed:", value)
    sys.stderr.write("written: " + value + "\n")
    warnings.warn("warned: " + value, stacklevel=1)
    child = [sys.executable, "-c", "import os, sys; print('child:', os.environ['CANARY']); "
             "open(sys.argv[1], 'w').write(open('/proc/self/cmdline').read())",
             os.path.join(str(ctx.task.working_dir), "child-cmdline")]
    subprocess.run(child, env=dict(os.environ, CANARY=value), check=True)
    ctx.lake.write_text("out/config.txt", "user=app\n")
    if where == "raise":
        raise RuntimeError("cannot connect with password " + value)
    return {"password": value, "nested": ["x", value + "-suffix"]}
