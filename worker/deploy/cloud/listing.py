"""Listing a job's tasks as plain JSON, page by page, through the SDK client's own pipeline
(its sign-in, retries and error policy).

azure-batch 15 turns every task of a listing into typed models, which costs more than the
service's answer itself: 10,000 tasks with their definitions took 12-18 s as models and 3 s
as JSON here (bench/RESULTS.md). The deploy loop's big listings (a second deploy comparing
every task, ``results``) read the JSON.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Sequence

#: azure-batch 15.1's API version, used when the client does not say its own.
API_VERSION = "2025-06-01"
PAGE = 1000


def list_tasks(batch: Any, job_id: str, select: Sequence[str],
               filter: Optional[str] = None) -> Iterator[Dict[str, Any]]:
    """The job's tasks as Batch's JSON (``$select`` and ``$filter`` as given)."""
    from urllib.parse import quote

    from azure.core.rest import HttpRequest

    # The client's API version (its configuration has no public accessor).
    version = getattr(getattr(batch, "_config", None), "api_version", None) or API_VERSION
    params = {"api-version": version, "$select": ",".join(select), "maxresults": str(PAGE)}
    if filter:
        params["$filter"] = filter
    url: Optional[str] = "/jobs/%s/tasks" % quote(job_id, safe="")
    while url:
        response = batch.send_request(HttpRequest("GET", url, params=params))
        response.raise_for_status()
        body = response.json()
        yield from body.get("value") or []
        url, params = body.get("odata.nextLink"), {}
