"""Small handlers for the bad-input table (tests/reliability/test_bad_input.py): each does
one thing with the lake, the secrets or DuckDB, so the table controls what goes wrong."""

import sys

from worker import PermanentError, RetryableError


def read(ctx, path):
    return len(ctx.lake.read_bytes(path))


def write(ctx, path, overwrite="yes"):
    ctx.lake.write_text(path, "written by bad_input.write\n", overwrite=overwrite == "yes")


def secret(ctx, name):
    return len(ctx.secrets[name])


def read_table(ctx, path):
    return ctx.lake.read_table(path).num_rows


def sql(ctx, path, query="select count(*) as n from t", stage="yes", format=""):
    data = ctx.lake.dataset(path, format=format or None, stage=stage == "yes")
    return ctx.sql(query, t=data).fetchall()[0][0]


def scratch(ctx):
    (ctx.scratch / "x").write_text("x")


def bug(ctx):
    return {"a": 1}["missing"]


def transient(ctx):
    raise RetryableError("the upstream API answered 503; try again")


def bad_data(ctx):
    raise PermanentError("row 17 of the input has no date")


def exits(ctx, code):
    sys.exit(int(code) if code.isdigit() else code)
