"""The threaded HTTP/1.1 server the three emulators share.

Each service is an *app*: an object with ``service`` (its name for faults and counters),
``operation(request) -> str`` and ``handle(request, operation) -> Response``, plus
``error(request, status, code, message) -> Response`` for injected faults. The server reads
the request, counts it, waits the network model's latency, applies a fault if one fires,
and writes the response with an exact Content-Length: the Azure SDKs keep connections alive,
and one stray byte would corrupt the next request on the same connection. With a network
model (``network.py``) bodies move at the shared link's pace. Each request served is handed,
as a :class:`RequestRecord`, to the server's ``on_request`` callback when there is one:
``emulate`` prints it as a line on stderr. (A callback, not a logger: a worker run in-process
beside the test fixtures configures logging as it likes, and must not see these lines.)

TLS is wrapped per connection in the connection's own thread, so a slow handshake never
blocks the accept loop.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple, Union
from urllib.parse import parse_qsl

from .counters import Counters
from .faults import Fault, Faults
from .network import Network

log = logging.getLogger(__name__)

Body = Union[bytes, memoryview]
# Below this size header and body go out in one sendall (one TLS record, one syscall).
_COALESCE = 64 * 1024


class RequestRecord(NamedTuple):
    """One request served: for a request log. ``path`` never carries the query string."""

    service: str
    method: str
    path: str
    operation: str
    status: str  # "200", ... or "dropped" or "lost" (applied, not answered)
    milliseconds: float


class Request:
    """One parsed request: what every app needs, decoded once."""

    def __init__(self, method: str, target: str, headers: Any, body: bytes) -> None:
        self.method = method
        self.raw_path, _, self.raw_query = target.partition("?")
        self.sent_path = self.raw_path  # raw_path may be narrowed by an app (a VM's prefix)
        self.vm = ""  # the VM an identity request is for (identity_limits.py)
        self.query: Dict[str, str] = dict(parse_qsl(self.raw_query, keep_blank_values=True))
        self.headers = headers
        self.body = body

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.headers.get(name, default)


class Response:
    """Status, headers and body; ``length`` overrides Content-Length (HEAD responses)."""

    def __init__(
        self,
        status: int,
        headers: Optional[List[Tuple[str, str]]] = None,
        body: Body = b"",
        length: Optional[int] = None,
    ) -> None:
        self.status = status
        self.headers = headers or []
        self.body = body
        self.length = len(body) if length is None else length


def http_date(timestamp: Optional[float] = None) -> str:
    """RFC 1123 date, as every Azure service writes it."""
    return email.utils.formatdate(timestamp, usegmt=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Windows-Azure-Emulator/1.0"
    sys_version = ""
    server: EmulatorServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        started = time.monotonic()
        request = Request(self.command, self.path, self.headers, self._read_body())
        app = self.server.app
        operation = app.operation(request)
        self.server.counters.add(app.service, operation)
        if self.server.network is not None:
            self.server.network.wait_latency()
        fault = self.server.faults.pick(app.service, operation)
        if fault is not None and fault.kind == "drop":
            self._drop()
            self._log(request, operation, "dropped", started)
            return
        response = self._respond(app, request, operation, fault)
        if fault is not None and fault.kind == "lost":
            self._drop()  # applied, but its answer never leaves
            self._log(request, operation, "lost", started)
            return
        if fault is not None and fault.kind == "late":
            time.sleep(fault.delay)  # applied already: the answer alone is late
        self._send(request, response, truncate=fault is not None and fault.kind == "truncate")
        self._log(request, operation, str(response.status), started)

    def _log(self, request: Request, operation: str, status: str, started: float) -> None:
        on_request = self.server.on_request
        if on_request is not None:
            on_request(RequestRecord(self.server.app.service, request.method, request.sent_path,
                                     operation, status, (time.monotonic() - started) * 1000))

    def _respond(self, app: Any, request: Request, operation: str,
                 fault: Optional[Fault]) -> Response:
        if fault is not None and fault.kind == "latency":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            response = app.error(request, fault.status, fault.code, "Injected fault.")
            if fault.retry_after is not None:
                response.headers.append(("Retry-After", fault.retry_after_header()))
            response.headers.extend(fault.headers)
            return response
        try:
            return app.handle(request, operation)
        except Exception:  # the one boundary: a bug in an emulator answers 500, not a hang
            log.exception("%s %s failed", request.method, request.raw_path)
            return app.error(request, 500, "InternalError", "The emulator failed.")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self._read(length) if length else b""

    def _read(self, length: int) -> bytes:
        network = self._paced()
        if network is not None:
            return network.receive(self.rfile.read, length)
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self._read(size))
            self.rfile.readline()

    def _head_block(self, response: Response) -> bytes:
        lines = ["HTTP/1.1 %d %s" % (response.status, self.responses.get(
            response.status, ("",))[0])]
        lines += ["%s: %s" % item for item in response.headers]
        lines.append("Content-Length: %d" % response.length)
        lines.append("Date: %s" % http_date())
        lines.append("Server: %s" % self.server_version)
        lines.append("x-ms-request-id: %s" % uuid.uuid4())
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, request: Request, response: Response, truncate: bool) -> None:
        head = self._head_block(response)
        body = b"" if request.method == "HEAD" else response.body
        if truncate:
            body = memoryview(body)[: len(body) // 2]
            self.close_connection = True
        network = self._paced()
        if len(body) <= _COALESCE:
            if network is not None:
                network.transmit(len(body))
            self.connection.sendall(head + bytes(body))
            return
        self.connection.sendall(head)
        if network is not None:
            network.send(self.connection.sendall, memoryview(body))
        else:
            self.connection.sendall(memoryview(body))

    def _paced(self) -> Optional[Network]:
        """The network model when it limits the link, else None (bodies move unpaced)."""
        network = self.server.network
        return network if network is not None and network.limited else None

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class EmulatorServer(ThreadingHTTPServer):
    """A loopback server for one app, optionally TLS, run in a background thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, app: Any, port: int = 0, tls: Optional[ssl.SSLContext] = None,
                 faults: Optional[Faults] = None, counters: Optional[Counters] = None,
                 network: Optional[Network] = None,
                 on_request: Optional[Callable[[RequestRecord], None]] = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.app = app
        self.tls = tls
        self.faults = faults or Faults()
        self.counters = counters or Counters()
        self.network = network
        self.on_request = on_request
        self._connections: Set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = request
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(request, server_side=True)
            with self._lock:
                self._connections.add(conn)
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, ConnectionError, socket.timeout) as e:
            log.debug("connection from %s ended: %s", client_address, e)
        finally:
            with self._lock:
                self._connections.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)

    def start(self) -> EmulatorServer:
        """Serve in a daemon thread; return self."""
        name = "emulator-%s-%d" % (self.app.service, self.port)
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every open connection, release the port."""
        self.shutdown()
        self.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_server(app: Any, port: int, preferred: int, tls: Optional[ssl.SSLContext],
                 what: str, notes: List[str], **options: Any) -> EmulatorServer:
    """Serve ``app`` on ``port``, which must be free; with no port, on ``preferred`` or,
    that one taken, on any free port (said in ``notes``); ``options`` are the server's
    (faults, counters, network, on_request)."""
    if not port and preferred:
        try:
            return EmulatorServer(app, preferred, tls, **options).start()
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
        server = EmulatorServer(app, 0, tls, **options).start()
        notes.append("port %d for the %s is taken; it listens on %d instead"
                     % (preferred, what, server.port))
        return server
    try:
        return EmulatorServer(app, port, tls, **options).start()
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        raise OSError("port %d for the %s is taken; give another port, or 0 for any free "
                      "one" % (port, what)) from e
