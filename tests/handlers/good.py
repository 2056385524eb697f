"""Handlers that load and run; each exercises one harness behaviour."""

import asyncio
import logging
import os
import time

NOT_CALLABLE = 42


def rollup(ctx, date, region="all"):
    ctx.log.info("rolling up %s for %s", date, region)
    return {"date": date, "region": region, "attempt": ctx.attempt}


def typed(ctx, n, flag=False, items=None):
    return {"n": n, "flag": flag, "items": items, "types": [type(v).__name__ for v in (n, flag)]}


def by_name(date, ctx):
    return {"ctx_is_context": type(ctx).__name__ == "Context", "date": date}


def no_context():
    return "no context needed"


def takes_kwargs(ctx, **params):
    return sorted(params)


async def async_rollup(ctx, n="1"):
    await asyncio.sleep(0.01)
    return {"async": True, "n": int(n)}


def context_info(ctx):
    scratch = ctx.scratch
    (scratch / "x.txt").write_text("x")
    return {
        "job_id": ctx.task.job_id,
        "task_id": ctx.task.task_id,
        "node_id": ctx.task.node_id,
        "pool_id": ctx.task.pool_id,
        "working_dir": str(ctx.task.working_dir),
        "shared_dir": str(ctx.task.shared_dir) if ctx.task.shared_dir else None,
        "attempt": ctx.attempt,
        "scratch": str(scratch),
        "time_left": ctx.time_left(),
    }


def logs_own(ctx):
    logging.getLogger("thirdparty.lib").warning("from a library %s", 7)
    ctx.log.info("from the handler", extra={"rows": 3})
    print("plain print to stdout")
    return None


def fails(ctx):
    raise ValueError("bad thing happened")


def fails_nested(ctx):
    def inner():
        raise KeyError("deep")

    inner()


def retryable(ctx):
    from worker import RetryableError

    raise RetryableError("the service was busy")


def permanent(ctx):
    from worker import PermanentError

    raise PermanentError("row 7 has no date")


def returns_unserialisable(ctx):
    return object()


def writes_then(ctx, fail="no"):
    ctx.lake.write_text("out/result.txt", "done")
    if fail == "yes":
        raise RuntimeError("failed after writing")
    return "ok"


def fails_keeping_outputs(ctx, overwrite="yes", marker=""):
    """Writes, then fails with an error that asks the runner to commit what is staged (the
    mechanism behind exec --keep-partial). ``marker``: wait for a stop before failing."""
    from worker import PermanentError

    ctx.lake.write_text("out/kept.txt", "kept", overwrite=overwrite == "yes")
    if marker:
        open(marker, "w").close()
        ctx.cancel_event.wait(30)
    error = PermanentError("3 of 10 rows were bad")
    error.commit_staged = True
    raise error


def polls(ctx, marker):
    """Works in steps and checks for cancellation between them, like a good handler."""
    ctx.lake.write_text("out/partial.txt", "partial")
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    while True:
        ctx.check_cancelled()
        time.sleep(0.05)


def ignores(ctx, marker):
    """Never checks: the harness must interrupt it after the grace period."""
    ctx.lake.write_text("out/partial.txt", "partial")
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    while True:
        try:
            time.sleep(0.05)
        except Exception:  # a careless handler: must not swallow the stop
            pass


def sleeps(ctx, seconds="30"):
    time.sleep(float(seconds))
    return "woke"


async def async_sleeps(ctx, marker):
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    await asyncio.sleep(60)


def finishes_in_grace(ctx, marker):
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    ctx.cancel_event.wait(30)
    return "stopped cleanly"


def reads_secret(ctx, name="db-password"):
    value = ctx.secrets[name]
    ctx.log.info("connecting with %s", value)
    return {"length": len(value), "echo": value}


def heavy_modules_loaded(ctx):
    """Which heavy libraries the harness imported before calling the handler."""
    import sys

    heavy = ("azure", "duckdb", "pyarrow", "pandas", "numpy", "tqdm", "cryptography")
    return sorted(m for m in sys.modules if m.split(".")[0] in heavy)
