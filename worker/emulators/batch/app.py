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

from ..faults import Fault, Faults
from ..server import Request, Response, http_date
from . import applications, files, jobs, nodes, pools, tasks
from .auth import authenticate
from .errors import BatchError, query_error
from .odata import max_results, parse_filter, select
from .roles import data_plane_action
from .schema import Field, check
from .service import BatchService
from .wire import ODATA_MINIMAL, parse_iso

#: The API versions served: azure-batch 14.2 (2024-02-01.19.0) and 15.x (2025-06-01), and
#: those of the versions between them.
API_VERSIONS = ("2023-05-01.17.0", "2023-11-01.18.0", "2024-02-01.19.0", "2024-07-01.20.0",
                "2025-06-01")
Handler = Callable[[BatchService, "Call"], Any]
_ROUTES: List[Tuple[str, "re.Pattern", Handler, str]] = []


def _route(pattern: str, kind: str, **verbs: Tuple[Handler, str]) -> None:
    """The operations on one path: ``GET=(handler, "get")`` is operation ``KIND.get``."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: "(?P<%s>%s)" % (
        m.group(1), ".+" if m.group(1) == "path" else "[^/]+"), pattern) + "$")
    for methods, (handler, name) in verbs.items():
        for method in methods.split("_"):
            _ROUTES.append((method, regex, handler, "%s.%s" % (kind, name)))


def _actions(base: str, kind: str, **handlers: Handler) -> None:
    """POST ``BASE/NAME`` is operation ``KIND.NAME`` (a pool's ``resize``, ...)."""
    for name, handler in handlers.items():
        _route(base + "/" + name, kind, POST=(handler, name))


P, J, T = "/pools/{poolId}", "/jobs/{jobId}", "/jobs/{jobId}/tasks/{taskId}"
N = P + "/nodes/{nodeId}"
_route("/applications", "application", GET=(applications.list_applications, "list"))
_route("/applications/{applicationId}", "application",
       GET=(applications.get_application, "get"))
_route("/pools", "pool", POST=(pools.add, "add"), GET=(pools.list_pools, "list"))
_route(P, "pool", GET=(pools.get, "get"), HEAD=(pools.exists, "exists"),
       DELETE=(pools.delete, "delete"), PATCH=(pools.patch, "patch"))
_actions(P, "pool", updateproperties=pools.replace, resize=pools.resize,
         stopresize=pools.stop_resize, enableautoscale=pools.enable_autoscale,
         disableautoscale=pools.disable_autoscale,
         evaluateautoscale=pools.evaluate_autoscale, removenodes=pools.remove_nodes)
_route(P + "/nodes", "node", GET=(nodes.list_nodes, "list"))
_route(N, "node", GET=(nodes.get_node, "get"))
_route(N + "/files", "file", GET=(files.list_node_files, "listnode"))
_route(N + "/files/{path}", "file", GET_HEAD_DELETE=(files.get_node_file, "node"))
_route("/jobs", "job", POST=(jobs.add, "add"), GET=(jobs.list_jobs, "list"))
_route(J, "job", GET=(jobs.get, "get"), PATCH=(jobs.patch, "patch"),
       PUT=(jobs.replace, "update"), DELETE=(jobs.delete, "delete"))
_actions(J, "job", disable=jobs.disable, enable=jobs.enable, terminate=jobs.terminate)
_route(J + "/taskcounts", "job", GET=(jobs.task_counts, "taskcounts"))
_route(J + "/tasks", "task", POST=(tasks.add, "add"), GET=(tasks.list_tasks, "list"))
_route(J + "/addtaskcollection", "task", POST=(tasks.add_collection, "addcollection"))
_route(T, "task", GET=(tasks.get, "get"), PUT=(tasks.update, "update"),
       DELETE=(tasks.delete, "delete"))
_actions(T, "task", terminate=tasks.terminate, reactivate=tasks.reactivate)
_route(T + "/subtasksinfo", "task", GET=(tasks.subtasks, "subtasks"))
_route(T + "/files", "file", GET=(files.list_task_files, "listtask"))
_route(T + "/files/{path}", "file", GET_HEAD_DELETE=(files.get_task_file, "task"))
_route("/emulator/preempt/{nodeId}", "emulator", POST=(nodes.preempt, "preempt"))  # ours

OPERATIONS = tuple(dict.fromkeys(op for _, _, _, op in _ROUTES)) + ("unknown",)


class Call:
    """One request as the operations see it, and the answers they give."""

    def __init__(self, service: BatchService, request: Request, params: Dict[str, str],
                 request_id: str, operation: str = "unknown",
                 faults: Optional[Faults] = None) -> None:
        self.service = service
        self.request = request
        self.method = request.method
        self.query = request.query
        self.params = params
        self.raw_body = request.body
        self.request_id = request_id
        self.operation = operation
        self.faults = faults

    def item_fault(self) -> Optional[Fault]:
        """An ``item`` fault rule's answer for one item of this request (a task of a
        collection), if one fires."""
        return self.faults.pick_item("batch", self.operation) if self.faults else None

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

    def conditional(self, resource: Any) -> Any:
        """``resource`` (a pool, a job: its ``etag`` and ``changed``) once the request's
        conditions hold for it."""
        self.check_conditions(resource.etag, resource.changed)
        return resource

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
        predicate = parse_filter(self.query.get("$filter"), kind) if filterable else None
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

    def __init__(self, service: BatchService, faults: Optional[Faults] = None) -> None:
        self.batch = service
        self.faults = faults  # the emulator set's: ``item`` rules apply inside a request
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
        caller = authenticate(request.method, request.raw_path, request.raw_query,
                              request.headers, self.batch.account, self.batch.key,
                              self.batch.issuer)
        route = self._match(request)
        if route is None:
            raise self._no_route(request)
        handler, params, operation = route
        if caller is not None and not self.batch.roles.allows(
                caller, *data_plane_action(operation, request.method)):
            raise BatchError("AuthorizationFailure")
        call = Call(self.batch, request, params, request_id, operation, self.faults)
        with self.batch.lock:
            response = handler(self.batch, call)
        self.batch.wake()
        if callable(response):  # work a handler leaves for after the lock (a file's bytes)
            response = response()
        return response

    def _no_route(self, request: Request) -> BatchError:
        if any(regex.match(request.raw_path) for _, regex, _, _ in _ROUTES):
            return BatchError("UnsupportedHttpVerb", values=[("HttpVerb", request.method)])
        return BatchError("InvalidUri", "The requested URI does not represent any resource the "
                          "local Batch service serves (docs/batch-service.md lists them).",
                          values=[("Uri", request.raw_path)])
