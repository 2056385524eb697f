"""Handlers that use ctx.duckdb / ctx.sql over the lake (tests/test_db.py)."""

import sys


def settings(ctx, hold="0"):
    """Report the DuckDB settings this task got; ``hold`` keeps it running beside others."""
    import time

    row = ctx.duckdb.sql(
        "select current_setting('threads'), current_setting('memory_limit'), "
        "current_setting('temp_directory'), current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions')"
    ).fetchall()[0]
    time.sleep(float(hold))
    return {
        "threads": int(row[0]),
        "memory_limit": row[1],
        "temp_directory": row[2],
        "autoinstall": bool(row[3]),
        "autoload": bool(row[4]),
        "scratch": str(ctx.scratch),
    }


def daily(ctx, source, target, partition_by="", stage=""):
    """The issue's example: sum by region over a lake folder, written back as parquet;
    ``stage=no`` streams it by ranged reads."""
    sales = ctx.lake.dataset(source, **({"stage": False} if stage == "no" else {}))
    out = ctx.sql(
        "select region, count(*) as n, sum(amount) as total from sales group by region "
        "order by region",
        sales=sales,
    )
    parts = [c for c in partition_by.split(",") if c]
    written = ctx.lake.write_table(out, target, partition_by=parts or None)
    return {"written": written, "rows": len(out.fetchall())}


def big_sort(ctx, source, target):
    """A sort and a wide aggregation far larger than memory_limit: must spill."""
    data = ctx.lake.dataset(source)
    out = ctx.sql(
        "select k % 1000 as bucket, count(distinct k) as n, max(pad) as pad "
        "from data group by bucket order by bucket",
        data=data,
    )
    ctx.lake.write_table(out, target)
    spilled = ctx.duckdb.sql("select current_setting('memory_limit')").fetchall()[0][0]
    return {"memory_limit": spilled}


def query(ctx, source, sql):
    """Run ``sql`` over the dataset as ``t`` and fetch it (errors surface in the handler)."""
    t = ctx.lake.dataset(source)
    return ctx.sql(sql, t=t).fetchall()


def lazy_failure(ctx, source):
    """A relation made by ctx.duckdb directly and executed by the handler: the runner
    translates DuckDB's error."""
    path = ctx.lake.dataset(source).local_files(ctx.scratch / "lake")[0]
    return ctx.duckdb.sql("select count(*) from read_parquet(?)", params=[path]).fetchall()


def no_duckdb(ctx):
    """Touches neither DuckDB nor pyarrow: neither may be imported."""
    return {"duckdb": "duckdb" in sys.modules, "pyarrow": "pyarrow" in sys.modules}


def named_columns(ctx, source, target):
    """The issue's example with ``columns=``: which heavy libraries the task loaded."""
    sales = ctx.lake.dataset(source, columns=["region", "amount"])
    out = ctx.sql("select region, sum(amount) as total from sales group by region", sales=sales)
    written = ctx.lake.write_table(out, target)
    loaded = [name for name in ("pandas", "pyarrow", "numpy") if name in sys.modules]
    return {"written": written, "loaded": loaded}
