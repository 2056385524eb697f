"""Orders of one day, summed per region with DuckDB, written to the lake and signed.

Run it locally against the emulators, or on Batch (see README.md):

    python -m worker run handlers.orders:summarize --param date=2024-01-31
"""

from __future__ import annotations

import hashlib
import hmac
import json

from worker import PermanentError

QUERY = """
    select region, count(*) as orders, round(sum(amount), 2) as total
    from orders group by region order by region
"""


def summarize(ctx, date):
    """``raw/orders/<date>.csv`` -> ``curated/orders/<date>.parquet`` and ``.json``
    (with its HMAC signature beside it, ``.json.sig``)."""
    source = f"raw/orders/{date}.csv"
    if not ctx.lake.exists(source):
        raise PermanentError(f"no orders for {date}: {source} is not in {ctx.lake.url}")
    totals = ctx.sql(QUERY, orders=ctx.lake.dataset(source))
    rows = [dict(zip(("region", "orders", "total"), row)) for row in totals.fetchall()]
    ctx.log.info("%s: %d regions", source, len(rows))
    ctx.lake.write_table(totals, f"curated/orders/{date}.parquet")
    body = json.dumps(rows, indent=2) + "\n"
    key = ctx.secrets["signing-key"].encode()
    ctx.lake.write_text(f"curated/orders/{date}.json", body)
    signature = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    ctx.lake.write_text(f"curated/orders/{date}.json.sig", signature + "\n")
    return {"regions": len(rows), "orders": sum(row["orders"] for row in rows)}
