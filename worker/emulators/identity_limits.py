"""One managed-identity endpoint per VM, throttled as Azure throttles it.

Azure limits managed-identity requests per VM: 20 a second and 5 at once (BATCH.md 1.5,
learn.microsoft.com/azure/virtual-machines/instance-metadata-service); a request beyond
either limit is answered 429 with IMDS's own body,
``{"error": "invalid_request", "error_description": "Temporarily throttled, too many
requests"}`` (the text Azure's IMDS sends, as reported in hashicorp/terraform-provider-azurerm
#20901), ``Content-Type: application/json; charset=utf-8`` and no ``Retry-After`` (none is
documented or reported for IMDS; Microsoft's guidance is exponential backoff).

A VM is named by a path prefix: ``/vms/<name>/metadata/identity/oauth2/token`` is VM
``<name>``'s endpoint, the bare path VM ``default``'s (docs/design.md). :class:`PerVm` wraps
the identity app: it strips the prefix, so the app sees the path under it, and applies the
VM's limits to every request the app knows (any token path; an unknown path is answered
without counting). The rate counts the requests admitted in the last second; a refused one
costs the VM nothing.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from typing import Any, Callable, Deque, Dict, NamedTuple, Optional, Tuple

from .server import Request, Response

DEFAULT_VM = "default"
_PREFIX = re.compile(r"^/vms/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})(/.*)?$")
THROTTLED_BODY = {"error": "invalid_request",
                  "error_description": "Temporarily throttled, too many requests"}


class Limits(NamedTuple):
    """Per VM: requests served at once, and requests admitted within any one second; and
    ``latency``, the seconds a token request takes to answer (holding its place among the
    concurrent ones): the emulator answers in about a millisecond, IMDS in tens of them when
    the token is cached (aad-pod-identity's IMDS stand-in logs 11 ms, Azure/aad-pod-identity
    #726) and up to seconds when it is not. 0 by default: Azure documents no figure."""

    concurrent: int = 5
    per_second: float = 20.0
    latency: float = 0.0


def split_vm(path: str) -> Tuple[str, str]:
    """``(vm, path under the prefix)`` of a request path; no prefix is VM ``default``."""
    found = _PREFIX.match(path)
    if found is None:
        return DEFAULT_VM, path
    return found.group(1), found.group(2) or "/"


class VmLimiter:
    """One VM's limits: ``enter()`` admits a request or refuses it; ``leave()`` after it."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self.active = 0
        self._admitted: Deque[float] = collections.deque()
        self.served = 0
        self.throttled = 0

    def enter(self) -> bool:
        now = self._clock()
        while self._admitted and now - self._admitted[0] >= 1.0:
            self._admitted.popleft()
        if self.active >= self.limits.concurrent or \
                len(self._admitted) >= self.limits.per_second:
            self.throttled += 1
            return False
        self.active += 1
        self._admitted.append(now)
        self.served += 1
        return True

    def leave(self) -> None:
        self.active -= 1


class Throttle:
    """The limiters of every VM seen, created on a VM's first request."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._vms: Dict[str, VmLimiter] = {}
        self._lock = threading.Lock()

    def enter(self, vm: str) -> bool:
        with self._lock:
            limiter = self._vms.get(vm)
            if limiter is None:
                limiter = self._vms[vm] = VmLimiter(self.limits, self._clock)
            return limiter.enter()

    def leave(self, vm: str) -> None:
        with self._lock:
            self._vms[vm].leave()

    def stats(self) -> Dict[str, Dict[str, int]]:
        """``{vm: {"served": n, "throttled": m}}``: token requests admitted and refused."""
        with self._lock:
            return {vm: {"served": v.served, "throttled": v.throttled}
                    for vm, v in sorted(self._vms.items())}

    def reset(self) -> None:
        with self._lock:
            self._vms = {vm: v for vm, v in self._vms.items() if v.active}
            for limiter in self._vms.values():
                limiter.served = limiter.throttled = 0


class PerVm:
    """The identity app behind per-VM prefixes and, with ``limits``, Azure's throttling."""

    def __init__(self, app: Any, limits: Optional[Limits] = None) -> None:
        self.app = app
        self.service = app.service
        self.throttle = Throttle(limits) if limits is not None else None

    def operation(self, request: Request) -> str:
        request.vm, request.raw_path = split_vm(request.raw_path)
        return self.app.operation(request)

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        return self.app.error(request, status, code, message)

    def handle(self, request: Request, operation: str) -> Response:
        vm = request.vm
        if self.throttle is None or operation == "unknown":
            return self.app.handle(request, operation)
        if not self.throttle.enter(vm):
            return throttled()
        try:
            if self.throttle.limits.latency:
                time.sleep(self.throttle.limits.latency)
            return self.app.handle(request, operation)
        finally:
            self.throttle.leave(vm)

    def stats(self) -> Dict[str, Dict[str, int]]:
        return self.throttle.stats() if self.throttle is not None else {}


def throttled() -> Response:
    """IMDS's answer to a request over the VM's limits."""
    return Response(429, [("Content-Type", "application/json; charset=utf-8")],
                    json.dumps(THROTTLED_BODY).encode())
