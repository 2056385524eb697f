"""Example handler: roll one day of sales up by region.

Run it (after ``bash starttask.sh``) from this folder with::

    WORKER_LAKE_URL=file://$PWD/data/lake WORKER_SECRETS_FILE=secrets.json \\
        ../.worker/venv/bin/python -m worker run handlers.sales:rollup --param date=2024-01-31
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

from worker import PermanentError


def rollup(ctx, date, region="all"):
    """Sum ``amount`` per region from ``raw/sales/<date>.csv`` into ``curated/daily/``."""
    source = f"raw/sales/{date}.csv"
    if not ctx.lake.exists(source):
        raise PermanentError(f"no sales file for {date}: {source} is missing in {ctx.lake.url}")
    token = ctx.secrets.get("report-token", default=None)
    ctx.log.info("rolling up %s (region %s) with token %s", source, region, token)
    totals = defaultdict(float)
    rows = 0
    for row in csv.DictReader(io.StringIO(ctx.lake.read_text(source))):
        if region in ("all", row["region"]):
            totals[row["region"]] += float(row["amount"])
            rows += 1
    ctx.check_cancelled()  # a long handler checks between units of work
    target = f"curated/daily/{date}.json"
    ctx.lake.write_text(target, json.dumps(dict(sorted(totals.items())), indent=2))
    return {"rows": rows, "regions": len(totals), "output": target}
