"""Handlers for tests/test_deploy_loop.py: a fan-out over lake files and its merge."""

import json

from worker import PermanentError


def item(ctx, path):
    """Read ``path``; a file that says ``bad`` is bad input (exit 4)."""
    text = ctx.lake.read_text(path).strip()
    if text == "bad":
        raise PermanentError("%s says bad: fix the file" % path)
    ctx.lake.write_text("out/%s" % path.rsplit("/", 1)[-1], text.upper())
    return {"path": path, "text": text, "size": {"chars": len(text)}}


def merge(ctx, items_file):
    items = json.loads(ctx.lake.read_text(items_file))["items"]
    total = "".join(ctx.lake.read_text("out/%s" % i.rsplit("/", 1)[-1]) for i in items)
    ctx.lake.write_text("out/merged.txt", total)
    return {"items": len(items), "merged": total}


def slow(ctx, path, gate):
    """Print while ``gate`` (a local file) does not exist, then go through."""
    import os
    import time

    print("waiting for the gate")
    while not os.path.exists(gate):
        print("still waiting")
        time.sleep(0.3)
    print("through the gate")
    return item(ctx, path)
