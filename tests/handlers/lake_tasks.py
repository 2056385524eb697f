"""Handlers that use ctx.lake and ctx.secrets (run against the emulators by the tests)."""

import logging
import os


def writes(ctx):
    ctx.lake.write_text("out/a.txt", "alpha")
    ctx.lake.write_bytes("out/sub/b.bin", b"\x00" * 1000)
    ctx.lake.write_bytes("out/empty", b"")
    return {"pending": ctx.lake.pending}


def writes_then_fails(ctx, local):
    ctx.lake.write_text("out/a.txt", "alpha")
    ctx.lake.upload(local, "out/uploaded")
    raise ValueError("failed after writing")


def reads(ctx, path):
    return ctx.lake.read_text(path)


def leaks_secret(ctx, name="canary"):
    """Does everything a careless handler might do with a secret value."""
    value = ctx.secrets[name]
    ctx.log.info("connecting with %s", value)
    ctx.log.warning("url: https://db.example/?password=" + value + "&x=1")
    logging.getLogger("thirdparty").error("auth header was %r", {"token": value})
    marker = os.environ.get("WORKER_TEST_MARKER")
    if marker:
        ctx.log.info("marker %s", marker)
    raise RuntimeError(f"login failed for secret value {value}")
