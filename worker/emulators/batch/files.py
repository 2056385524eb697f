"""Files on the nodes, as Batch's file API serves them: a task's folder (``stdout.txt``,
``stderr.txt``, ``wd/...``) and a node's root (``startup/stdout.txt``, ``workitems/...``):
list (``recursive``, ``$filter``), get (whole, or the bytes of an ``ocp-range`` or
``Range`` header, answered 200 as Batch does), properties (HEAD) and delete.

A task whose node is gone (preempted, removed) has no files to serve: Batch's 409
``TaskFilesUnavailable``, as for a task that never ran.

Where the files are is found under the service's lock; the disk is read after the app let
go of it (the handlers return that work as a function), so a large file or a slow disk holds
no other request up. A file that goes meanwhile (its node preempted) is ``FileNotFound``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Optional, Tuple
from urllib.parse import quote, unquote

from ..server import Response, http_date
from .errors import BatchError
from .wire import iso

if TYPE_CHECKING:
    from .app import Call
    from .service import BatchService

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_TYPE = "application/octet-stream"


def _task_base(service: "BatchService", call: "Call") -> Tuple[Path, str]:
    job, run = service.task(call.params["jobId"], call.params["taskId"])
    node = service.node_of(job, run)
    if node is None or node.local is None:
        raise BatchError("TaskFilesUnavailable", "The files of the specified task are "
                         "unavailable: it has not run, or its node is no longer in the pool.",
                         status=409)
    folder = node.local.task_folder(job.id, run.task.id)
    return folder, "%s/jobs/%s/tasks/%s/files" % (service.url, job.id, run.task.id)


def _node_base(service: "BatchService", call: "Call") -> Tuple[Path, str]:
    pool = service.pool(call.params["poolId"])
    node = pool.nodes.get(call.params["nodeId"])
    if node is None:
        raise BatchError("NodeNotFound")
    if node.local is None or node.state in ("creating", "preempted"):
        raise BatchError("OperationNotValidOnNode", "The node has no disk now (state %s)."
                         % node.state)
    return node.local.root, "%s/pools/%s/nodes/%s/files" % (service.url, pool.id, node.id)


def list_task_files(service: "BatchService", call: "Call") -> Any:
    return _later(_list, _task_base(service, call), call)


def list_node_files(service: "BatchService", call: "Call") -> Any:
    return _later(_list, _node_base(service, call), call)


def get_task_file(service: "BatchService", call: "Call") -> Any:
    return _later(_file, _task_base(service, call), call)


def get_node_file(service: "BatchService", call: "Call") -> Any:
    return _later(_file, _node_base(service, call), call)


def _later(work: Callable[[Path, str, "Call"], Any], where: Tuple[Path, str],
           call: "Call") -> Callable[[], Any]:
    """The disk's part of an operation, for the app to run outside the service's lock."""
    def run() -> Any:
        try:
            return work(where[0], where[1], call)
        except OSError:  # gone since it was found (the node preempted, the file deleted)
            raise BatchError("FileNotFound") from None
    return run


def _list(base: Path, url: str, call: "Call") -> Any:
    recursive = (call.query.get("recursive") or "false").lower() == "true"
    entries = [_entry(path, base, url) for path in _walk(base, recursive)]
    return call.listing(entries, "files")


def _walk(base: Path, recursive: bool) -> Iterator[Path]:
    if not base.is_dir():
        return
    if not recursive:
        yield from sorted(base.iterdir())
        return
    for folder, dirs, files in os.walk(str(base)):
        dirs.sort()
        for name in sorted(dirs + files):
            yield Path(folder) / name


def _entry(path: Path, base: Path, url: str) -> Dict[str, Any]:
    name = path.relative_to(base).as_posix()
    stat = path.stat()
    properties: Dict[str, Any] = {"creationTime": iso(stat.st_ctime),
                                  "lastModified": iso(stat.st_mtime)}
    if not path.is_dir():
        properties.update({"contentLength": stat.st_size, "contentType": CONTENT_TYPE,
                           "fileMode": "0%o" % (stat.st_mode & 0o7777)})
    return {"name": name, "url": "%s/%s" % (url, quote(name)), "isDirectory": path.is_dir(),
            "properties": properties}


def _resolve(base: Path, raw: str) -> Path:
    target = (base / unquote(raw)).resolve()
    if target != base.resolve() and base.resolve() not in target.parents:
        raise BatchError("FileNotFound")
    if not target.exists():
        raise BatchError("FileNotFound")
    return target


def _file(base: Path, url: str, call: "Call") -> Any:
    path = _resolve(base, call.params["path"])
    if call.method == "DELETE":
        return _delete(path, call)
    if path.is_dir() and call.method != "HEAD":
        raise BatchError("FileNotFound", "The specified path is a directory.")
    stat = path.stat()
    headers = [("ocp-creation-time", http_date(stat.st_ctime)),
               ("ocp-batch-file-isdirectory", "true" if path.is_dir() else "false"),
               ("ocp-batch-file-url", "%s/%s" % (url, quote(call.params["path"]))),
               ("ocp-batch-file-mode", "0%o" % (stat.st_mode & 0o7777)),
               ("Last-Modified", http_date(stat.st_mtime)),
               ("Content-Type", CONTENT_TYPE)]
    headers += call.common_headers()
    if call.method == "HEAD":
        return Response(200, headers, b"", length=0 if path.is_dir() else stat.st_size)
    start, end = _range(call, stat.st_size)
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(max(0, end - start))
    return Response(200, headers, data)


def _range(call: "Call", size: int) -> Tuple[int, int]:
    text: Optional[str] = call.header("ocp-range") or call.header("Range")
    if not text:
        return 0, size
    match = _RANGE.match(text.strip())
    if not match or not (match.group(1) or match.group(2)):
        raise BatchError("InvalidHeaderValue", values=[("HeaderName", "ocp-range"),
                                                       ("HeaderValue", text)])
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        return max(0, size - int(last)), size
    start = int(first)
    end = size if not last else min(size, int(last) + 1)
    if start >= size and size > 0:
        raise BatchError("InvalidRange")
    return start, max(start, end)


def _delete(path: Path, call: "Call") -> Any:
    if path.is_dir():
        if (call.query.get("recursive") or "false").lower() != "true":
            raise BatchError("OperationInvalidForCurrentState",
                             "The path is a directory: delete it with recursive=true.")
        shutil.rmtree(str(path))
    else:
        path.unlink()
    return call.empty(200)
