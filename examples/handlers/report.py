"""Example handler: one day's sales report, by region, with DuckDB, signed with a secret.

Needs ``tabulate`` (examples/requirements.txt), which the application package adds to the
worker's own dependencies. After ``python -m worker package examples --out app.zip``, a
task runs it on a node with::

    bash "$AZ_BATCH_APP_PACKAGE_examples_1_0_0/task.sh" run handlers.report:daily \\
        --param date=2024-01-31
"""

from __future__ import annotations

import hashlib
import hmac

import tabulate


def daily(ctx, date):
    """Totals per region of ``raw/sales/<date>.csv`` as parquet and a signed text table."""
    sales = ctx.lake.dataset(f"raw/sales/{date}.csv")
    totals = ctx.sql("select region, count(*) as orders, sum(amount) as total from sales "
                     "group by region order by region", sales=sales)
    ctx.lake.write_table(totals, f"curated/report/{date}.parquet")
    rows = totals.fetchall()
    text = tabulate.tabulate(rows, headers=["region", "orders", "total"], floatfmt=".2f")
    key = ctx.secrets["report-token"].encode()
    signature = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    ctx.lake.write_text(f"curated/report/{date}.txt", text + "\n")
    ctx.lake.write_text(f"curated/report/{date}.txt.sig", signature + "\n")
    return {"regions": len(rows), "tabulate": tabulate.__version__}
