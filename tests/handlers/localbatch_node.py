"""Handlers the local-node test (tests/test_localbatch_node.py) adds to the example's job by
path: a task that hangs past its maxWallClockTime, one that waits to be stopped, one with
bad input, and one that returns its parameter."""

import time

from worker import PermanentError


def hang(ctx, path):
    """Stage an output, then ignore every stop: only a kill ends it."""
    ctx.lake.write_text(path, "staged, never committed\n")
    ctx.log.info("staged %s; hanging", path)
    while True:
        time.sleep(1)


def stage_and_wait(ctx, path):
    """Stage an output, then wait to be stopped (SIGTERM): nothing may be committed."""
    ctx.lake.write_text(path, "staged, never committed\n")
    ctx.log.info("staged %s; waiting to be stopped", path)
    ctx.cancel_event.wait(120)
    ctx.check_cancelled()


def bad_input(ctx):
    raise PermanentError("raw/broken/data.csv has no header row: fix the file")


def echo(ctx, value):
    return value
