"""Example pipeline: one Batch task per day of sales, then a merge task.

    raw/sales/date=D/*.parquet  --partition-->  curated/daily/date=D/part-0.parquet
    curated/daily/date=*/       --merge------>  curated/summary/<job id>.parquet

``batch.toml`` beside this folder fans ``partition`` out over every ``raw/sales/date=*/``
folder of the lake (one task each, listed when the documents are generated) and runs
``merge`` once they have all finished. Customers are pseudonymised with a key from Key Vault
(the secret ``customer-key``), so curated data holds no customer ids, and the same key gives
the same pseudonym on every day, which lets the merge count customers across days.
"""

from __future__ import annotations

import json

import pyarrow as pa

from worker import PermanentError

DAILY = "curated/daily/date={date}/part-0.parquet"


def partition(ctx, path):
    """One day's partition: orders and totals per region and pseudonymised customer."""
    date = path.rstrip("/").rsplit("=", 1)[-1]
    sales = ctx.lake.dataset(path.rstrip("/") + "/*.parquet")
    key = ctx.secrets["customer-key"]
    daily = ctx.sql(
        "select region, sha256(? || customer) as customer, count(*) as orders, "
        "sum(amount) as total from sales group by all order by region, customer",
        params=[key], sales=sales).to_arrow_table()
    target = DAILY.format(date=date)
    ctx.lake.write_table(daily, target)
    ctx.log.info("wrote %s: %d rows (committed when the task succeeds)", target,
                 daily.num_rows)
    return {"date": date, "rows": daily.num_rows, "output": target}


def merge(ctx, items_file):
    """Totals per region over the days the fan-out listed (``items_file``, written with the
    job's documents), from the partitions that succeeded; the others are reported."""
    items = json.loads(ctx.lake.read_text(items_file))["items"]
    dates = [item.rstrip("/").rsplit("=", 1)[-1] for item in items]
    # One listing, not a request per day: a fan-out may have 100,000 days.
    written = {path.split("/date=", 1)[1].split("/", 1)[0]
               for path in ctx.lake.glob(DAILY.format(date="*"))}
    present = [d for d in dates if d in written]
    missing = sorted(set(dates) - set(present))
    if not present:
        raise PermanentError("no partition of %s has an output in curated/daily/: nothing "
                             "to merge" % items_file)
    if missing:
        ctx.log.warning("merging %d of %d days; no output for %s", len(present), len(dates),
                        ", ".join(missing))
    daily = ctx.lake.dataset(DAILY.format(date="*"))
    summary = ctx.sql(
        "select region, count(distinct date) as days, sum(orders)::bigint as orders, "
        "count(distinct customer) as customers, sum(total) as total from daily "
        "where cast(date as varchar) in (select date from present) "
        "group by region order by region",
        daily=daily, present=pa.table({"date": present}))
    target = "curated/summary/%s.parquet" % ctx.task.job_id
    ctx.lake.write_table(summary, target)
    return {"days": len(present), "missing": missing, "output": target}
