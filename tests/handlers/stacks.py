"""Handlers that write and read through ctx.lake for the client-stack tests' cross-reads."""

import hashlib

from stacks.payload import payload


def write(ctx, path, size):
    ctx.lake.write_bytes(path, payload(path, size))


def digests(ctx, paths):
    return {p: hashlib.sha256(ctx.lake.read_bytes(p)).hexdigest() for p in paths}
