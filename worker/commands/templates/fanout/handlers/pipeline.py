"""A fan-out and a merge over a lake listing, deployed as one Batch job (batch.toml):

    raw/orders/date=D/*.csv  --partition: a task per day-->  curated/daily/D.parquet
    curated/daily/*.parquet  --merge: after them all---->  curated/summary/JOB.parquet

``python -m worker spec`` lists ``raw/orders/date=*/`` in the lake when it writes the
job's documents: one ``partition`` task per folder, then one ``merge`` task that gets
the file listing them (``items_file``) and totals the days whose partition succeeded. A
failed day does not block the merge (``dependency_action = "satisfy"``): it names it.

One day, locally (README.md):

    python -m worker run handlers.pipeline:partition \\
        --param path=raw/orders/date=2024-01-31/
"""

from __future__ import annotations

import json

import pyarrow as pa
from worker import PermanentError

DAILY = "curated/daily/{date}.parquet"


def day_of(path):
    """``raw/orders/date=2024-01-31/`` -> ``2024-01-31``."""
    return path.rstrip("/").rsplit("=", 1)[-1]


def partition(ctx, path):
    """One day's folder -> its orders and total per region, the day in a column."""
    date = day_of(path)
    orders = ctx.lake.dataset(path.rstrip("/") + "/*.csv")
    daily = ctx.sql(
        "select ? as day, region, count(*) as orders, round(sum(amount), 2) as total "
        "from orders group by region order by region",
        params=[date],
        orders=orders,
    ).to_arrow_table()
    target = DAILY.format(date=date)
    ctx.lake.write_table(daily, target)  # committed when the task succeeds
    ctx.log.info("%s: %d regions -> %s", path, daily.num_rows, target)
    return {"date": date, "regions": daily.num_rows, "output": target}


def merge(ctx, items_file):
    """Totals per region over the days the fan-out listed (``items_file``, written with
    the job's documents) whose partition succeeded; the days without one are named."""
    items = json.loads(ctx.lake.read_text(items_file))["items"]
    dates = [day_of(item) for item in items]
    present = [d for d in dates if ctx.lake.exists(DAILY.format(date=d))]
    missing = [d for d in dates if d not in present]
    if not present:
        raise PermanentError(
            f"no day listed in {items_file} has a partition in curated/daily/: "
            "nothing to merge"
        )
    if missing:
        days = ", ".join(missing)
        ctx.log.warning(
            "merging %d of %d days; none for %s", len(present), len(dates), days
        )
    summary = ctx.sql(
        "select region, count(distinct day) as days, sum(orders)::bigint as orders, "
        "round(sum(total), 2) as total from daily "
        "where day in (select day from listed) "
        "group by region order by region",
        daily=ctx.lake.dataset(DAILY.format(date="*")),
        listed=pa.table({"day": present}),
    )
    target = f"curated/summary/{ctx.task.job_id}.parquet"
    ctx.lake.write_table(summary, target)
    return {"days": len(present), "missing": missing, "output": target}
