"""The Batch data plane over HTTP: the routes, the checks every request goes through (an
API version Batch knows, authentication, a JSON body where one is sent) and the shapes of
the answers (OData lists with ``odata.nextLink`` pages, ``$filter`` and ``$select``; eTags;
``request-id``; one error body per failure, never a traceback).

Served at ``https://127.0.0.1:PORT``, the account URL (``AZURE_BATCH_ENDPOINT``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote, urlencode

from ..server import Request, Response, http_date
from . import applications, files, jobs, nodes, pools, tasks
from .auth import authenticate
from .errors import BatchError, query_error
from .odata import max_results, parse_filter, select
from .schema import Field, check
from .service import BatchService
from .wire import ODATA_MINIMAL, parse_iso

#: The API versions served: azure-batch 14.2 (2024-02-01.19.0) and 15.x (2025-06-01), and
#: those of the versions between them.
API_VERSIONS = ("2023-05-01.17.0", "2023-11-01.18.0", "2024-02-01.19.0", "2024-07-01.20.0",
                "2025-06-01")
Handler = Callable[[BatchService, "Call"], Any]
_ROUTES: List[Tuple[str, "re.Pattern", Handler, str]] = []


def _route(methods: str, pattern: str, handler: Handler, operation: str) -> None:
    regex = "^" + re.sub(r"\{(\w+)\}", lambda m: "(?P<%s>%s)" % (
        m.group(1), ".+" if m.group(1) == "path" else "[^/]+"), pattern) + "$"
    for method in methods.split("|"):
        _ROUTES.append((method, re.compile(regex), handler, operation))


_route("GET", "/applications", applications.list_applications, "application.list")
_route("GET", "/applications/{applicationId}", applications.get_application, "application.get")
_route("POST", "/pools", pools.add, "pool.add")
_route("GET", "/pools", pools.list_pools, "pool.list")
_route("GET", "/pools/{poolId}", pools.get, "pool.get")
_route("HEAD", "/pools/{poolId}", pools.exists, "pool.exists")
_route("DELETE", "/pools/{poolId}", pools.delete, "pool.delete")
_route("PATCH", "/pools/{poolId}", pools.patch, "pool.patch")
_route("POST", "/pools/{poolId}/updateproperties", pools.replace, "pool.updateproperties")
_route("POST", "/pools/{poolId}/resize", pools.resize, "pool.resize")
_route("POST", "/pools/{poolId}/stopresize", pools.stop_resize, "pool.stopresize")
_route("POST", "/pools/{poolId}/enableautoscale", pools.enable_autoscale,
       "pool.enableautoscale")
_route("POST", "/pools/{poolId}/disableautoscale", pools.disable_autoscale,
       "pool.disableautoscale")
_route("POST", "/pools/{poolId}/evaluateautoscale", pools.evaluate_autoscale,
       "pool.evaluateautoscale")
_route("POST", "/pools/{poolId}/removenodes", pools.remove_nodes, "pool.removenodes")
_route("GET", "/pools/{poolId}/nodes", nodes.list_nodes, "node.list")
_route("GET", "/pools/{poolId}/nodes/{nodeId}", nodes.get_node, "node.get")
_route("GET", "/pools/{poolId}/nodes/{nodeId}/files", files.list_node_files, "file.listnode")
_route("GET|HEAD|DELETE", "/pools/{poolId}/nodes/{nodeId}/files/{path}", files.get_node_file,
       "file.node")
_route("POST", "/jobs", jobs.add, "job.add")
_route("GET", "/jobs", jobs.list_jobs, "job.list")
_route("GET", "/jobs/{jobId}", jobs.get, "job.get")
_route("PATCH", "/jobs/{jobId}", jobs.patch, "job.patch")
_route("PUT", "/jobs/{jobId}", jobs.replace, "job.update")
_route("DELETE", "/jobs/{jobId}", jobs.delete, "job.delete")
_route("POST", "/jobs/{jobId}/disable", jobs.disable, "job.disable")
_route("POST", "/jobs/{jobId}/enable", jobs.enable, "job.enable")
_route("POST", "/jobs/{jobId}/terminate", jobs.terminate, "job.terminate")
_route("GET", "/jobs/{jobId}/taskcounts", jobs.task_counts, "job.taskcounts")
_route("POST", "/jobs/{jobId}/tasks", tasks.add, "task.add")
_route("GET", "/jobs/{jobId}/tasks", tasks.list_tasks, "task.list")
_route("POST", "/jobs/{jobId}/addtaskcollection", tasks.add_collection, "task.addcollection")
_route("GET", "/jobs/{jobId}/tasks/{taskId}", tasks.get, "task.get")
_route("PUT", "/jobs/{jobId}/tasks/{taskId}", tasks.update, "task.update")
_route("DELETE", "/jobs/{jobId}/tasks/{taskId}", tasks.delete, "task.delete")
_route("POST", "/jobs/{jobId}/tasks/{taskId}/terminate", tasks.terminate, "task.terminate")
_route("POST", "/jobs/{jobId}/tasks/{taskId}/reactivate", tasks.reactivate, "task.reactivate")
_route("GET", "/jobs/{jobId}/tasks/{taskId}/subtasksinfo", tasks.subtasks, "task.subtasks")
_route("GET", "/jobs/{jobId}/tasks/{taskId}/files", files.list_task_files, "file.listtask")
_route("GET|HEAD|DELETE", "/jobs/{jobId}/tasks/{taskId}/files/{path}", files.get_task_file,
       "file.task")
_route("POST", "/emulator/preempt/{nodeId}", nodes.preempt, "emulator.preempt")  # ours

OPERATIONS = tuple(dict.fromkeys(op for _, _, _, op in _ROUTES)) + ("unknown",)


class Call:
    """One request as the operations see it, and the answers they give."""

    def __init__(self, service: BatchService, request: Request, params: Dict[str, str],
                 request_id: str) -> None:
        self.service = service
        self.request = request
        self.method = request.method
        self.query = request.query
        self.params = params
        self.raw_body = request.body
        self.request_id = request_id

    def header(self, name: str) -> Optional[str]:
        return self.request.header(name)

    def body(self, rule: Field, optional: bool = False) -> Dict[str, Any]:
        if not self.raw_body.strip():
            if optional:
                return {}
            raise BatchError("InvalidRequestBody", values=[("Reason", "the body is empty")])
        try:
            document = json.loads(self.raw_body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise BatchError("InvalidRequestBody", values=[("Reason", str(e))]) from None
        return check(document, rule)

    def check_conditions(self, etag: str, changed: float) -> None:
        """If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since."""
        match, none_match = self.header("If-Match"), self.header("If-None-Match")
        reading = self.method in ("GET", "HEAD")
        if match and match.strip() not in ("*", etag):
            raise BatchError("ConditionNotMet")
        if none_match and none_match.strip() in ("*", etag):
            if reading:
                raise BatchError("ConditionNotMet", status=304)
            raise BatchError("ConditionNotMet")
        since = parse_http_date(self.header("If-Modified-Since"))
        if since is not None and int(changed) <= since:
            raise BatchError("ConditionNotMet", status=304 if reading else 412)
        before = parse_http_date(self.header("If-Unmodified-Since"))
        if before is not None and int(changed) > before:
            raise BatchError("ConditionNotMet")

    def common_headers(self) -> List[Tuple[str, str]]:
        headers = [("request-id", self.request_id), ("DataServiceVersion", "3.0")]
        client = self.header("client-request-id")
        if client and (self.header("return-client-request-id") or "").lower() == "true":
            headers.append(("client-request-id", client))
        return headers

    def _resource_headers(self, resource: Any) -> List[Tuple[str, str]]:
        if resource is None:
            return []
        return [("ETag", resource.etag), ("Last-Modified", http_date(resource.changed))]

    def created(self, url: str, resource: Any) -> Response:
        headers = self.common_headers() + self._resource_headers(resource)
        headers += [("Location", url), ("DataServiceId", url)]
        return Response(201, headers)

    def empty(self, status: int, resource: Any = None) -> Response:
        headers = self.common_headers() + self._resource_headers(resource)
        url = self.service.url + self.request.raw_path
        if status in (200, 202, 204) and self.method != "GET":
            headers.append(("DataServiceId", url))
        return Response(status, headers)

    def document(self, status: int, document: Dict[str, Any],
                 metadata: Optional[str] = None) -> Response:
        if metadata:
            document = dict({"odata.metadata": "%s/$metadata#%s" % (self.service.url,
                                                                    metadata)}, **document)
        return self._json(status, document, self.common_headers())

    def resource(self, document: Dict[str, Any], resource: Any, metadata: str) -> Response:
        document = select(document, self.query.get("$select"))
        document = dict({"odata.metadata": "%s/$metadata#%s" % (self.service.url, metadata)},
                        **document)
        return self._json(200, document, self.common_headers() +
                          self._resource_headers(resource))

    def listing(self, items: Sequence[Any], kind: str, filterable: bool = True,
                render: Optional[Callable[[Any], Dict[str, Any]]] = None,
                key: Optional[Callable[[Any], str]] = None) -> Response:
        """One page of ``items`` (rendered by ``render``, in ``key`` order: Batch lists by
        id), filtered and projected, with the link to the next. Without a ``$filter`` only
        the page is rendered."""
        render = render or (lambda item: item)
        ordered = sorted(items, key=key) if key else list(items)
        predicate = parse_filter(self.query.get("$filter")) if filterable else None
        size = max_results(self.query.get("maxresults"))
        start = self._skip()
        if predicate is None:
            total = len(ordered)
            page = [render(i) for i in ordered[start:start + size]]
        else:
            chosen = [d for d in map(render, ordered) if predicate(d)]
            total, page = len(chosen), chosen[start:start + size]
        document: Dict[str, Any] = {"odata.metadata": "%s/$metadata#%s" % (self.service.url,
                                                                           kind),
                                    "value": [select(d, self.query.get("$select"))
                                              for d in page]}
        if start + size < total:
            query = {k: v for k, v in self.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + size)
            document["odata.nextLink"] = "%s%s?%s" % (self.service.url, self.request.raw_path,
                                                      urlencode(query, quote_via=quote))
        return self._json(200, document, self.common_headers())

    def _skip(self) -> int:
        token = self.query.get("$skiptoken", "0") or "0"
        if not token.isdigit():
            raise query_error("InvalidQueryParameterValue", "$skiptoken", token)
        return int(token)

    def _json(self, status: int, document: Dict[str, Any],
              headers: List[Tuple[str, str]]) -> Response:
        body = json.dumps(document, separators=(",", ":")).encode()
        return Response(status, [("Content-Type", ODATA_MINIMAL)] + headers, body)


def parse_http_date(text: Optional[str]) -> Optional[int]:
    if not text:
        return None
    import email.utils

    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        stamp = parse_iso(text)
        return int(stamp) if stamp is not None else None
    return int(parsed.timestamp())


class BatchApp:
    """The app the emulator server runs for the Batch account."""

    service_name = "batch"

    def __init__(self, service: BatchService) -> None:
        self.batch = service
        self.service = self.service_name  # the server's name for counters and faults

    def operation(self, request: Request) -> str:
        route = self._match(request)
        return route[2] if route else "unknown"

    def _match(self, request: Request) -> Optional[Tuple[Handler, Dict[str, str], str]]:
        cached = getattr(request, "batch_route", False)
        if cached is not False:
            return cached
        found = None
        for method, regex, handler, operation in _ROUTES:
            match = regex.match(request.raw_path)
            if match and method == request.method:
                found = (handler, match.groupdict(), operation)
                break
        request.batch_route = found  # type: ignore[attr-defined]
        return found

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        return self._error(BatchError(code, message, status=status), str(uuid.uuid4()))

    def _error(self, error: BatchError, request_id: str) -> Response:
        headers = [("Content-Type", ODATA_MINIMAL), ("request-id", request_id),
                   ("DataServiceVersion", "3.0")] + error.headers
        if error.status == 304:
            return Response(304, headers[1:])
        return Response(error.status, headers, error.body(self.batch.url, request_id))

    def handle(self, request: Request, operation: str) -> Response:
        request_id = str(uuid.uuid4())
        try:
            return self._handle(request, request_id)
        except BatchError as e:
            return self._error(e, request_id)

    def _handle(self, request: Request, request_id: str) -> Response:
        version = request.query.get("api-version")
        if not version:
            raise query_error("MissingRequiredQueryParameter", "api-version")
        if version not in API_VERSIONS:
            raise BatchError("UnsupportedRequestVersion", values=[
                ("QueryParameterName", "api-version"), ("QueryParameterValue", version)])
        authenticate(request.method, request.raw_path, request.raw_query, request.headers,
                     self.batch.account, self.batch.key, self.batch.issuer)
        route = self._match(request)
        if route is None:
            raise self._no_route(request)
        handler, params, _ = route
        call = Call(self.batch, request, params, request_id)
        with self.batch.lock:
            response = handler(self.batch, call)
        self.batch.wake()
        return response

    def _no_route(self, request: Request) -> BatchError:
        if any(regex.match(request.raw_path) for _, regex, _, _ in _ROUTES):
            return BatchError("UnsupportedHttpVerb", values=[("HttpVerb", request.method)])
        return BatchError("InvalidUri", "The requested URI does not represent any resource the "
                          "local Batch service serves (docs/batch-service.md lists them).",
                          values=[("Uri", request.raw_path)])
