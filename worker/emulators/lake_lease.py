"""Blob leases: the Lease Blob state machine and the lease checks on reads, writes and deletes.

A lease is an exclusive write lock on a blob (or a path of the lake), for 15 to 60 seconds or
without end. While one is active (leased, or breaking) a write or delete must name its id in
``x-ms-lease-id``; a read may name it and then must name the right one. The states and error
codes are the Blob service's (Lease Blob, REST reference): ``available``, ``leased``,
``expired``, ``breaking``, ``broken``. Leases live in memory only (``--data`` keeps none), as
a restarted service would have let short leases expire anyway.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import List, Optional, Tuple

from .lake_errors import LakeError

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
Headers = List[Tuple[str, str]]


class Lease:
    """One blob's lease: its id, when it ends (None: never) and when a break ends."""

    __slots__ = ("lease_id", "duration", "expires", "break_at")

    def __init__(self, lease_id: str, duration: int, now: float) -> None:
        self.lease_id = lease_id
        self.duration = duration  # seconds, -1 for a lease without end
        self.expires = None if duration == -1 else now + duration
        self.break_at: Optional[float] = None

    def state(self, now: float) -> str:
        if self.break_at is not None:
            return "breaking" if now < self.break_at else "broken"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "leased"

    def active(self, now: float) -> bool:
        return self.state(now) in ("leased", "breaking")


def _conflict(code: str, message: str) -> LakeError:
    return LakeError(409, code, message)


def _mismatch() -> LakeError:
    return _conflict("LeaseIdMismatchWithLeaseOperation", "The lease ID specified did not "
                     "match the lease ID for the blob.")


def _not_present() -> LakeError:
    return _conflict("LeaseNotPresentWithLeaseOperation", "There is currently no lease on the "
                     "blob.")


def status_headers(lease: Optional[Lease]) -> Headers:
    """x-ms-lease-status, -state and (while leased) -duration, as Get Blob Properties says."""
    state = lease.state(time.time()) if lease is not None else "available"
    headers = [("x-ms-lease-status", "locked" if state in ("leased", "breaking") else "unlocked"),
               ("x-ms-lease-state", state)]
    if lease is not None and state == "leased":
        headers.append(("x-ms-lease-duration", "infinite" if lease.duration == -1 else "fixed"))
    return headers


def check(lease: Optional[Lease], lease_id: Optional[str], write: bool) -> None:
    """412 unless ``lease_id`` (the request's x-ms-lease-id) fits the blob's lease."""
    active = lease is not None and lease.active(time.time())
    if lease_id:
        if not active:
            raise LakeError(412, "LeaseNotPresentWithBlobOperation",
                            "There is currently no lease on the blob.")
        if lease.lease_id != lease_id:  # type: ignore[union-attr]
            raise LakeError(412, "LeaseIdMismatchWithBlobOperation",
                            "The lease ID specified did not match the lease ID for the blob.")
    elif active and write:
        raise LakeError(412, "LeaseIdMissing", "There is currently a lease on the blob and no "
                        "lease ID was specified in the request.")


def _duration(value: Optional[str]) -> int:
    try:
        duration = int(value or "")
    except ValueError:
        duration = 0
    if duration != -1 and not 15 <= duration <= 60:
        raise LakeError(400, "InvalidHeaderValue", "The value for one of the HTTP headers is "
                        "not in the correct format.")
    return duration


def _guid(value: Optional[str]) -> str:
    if value is None:
        return str(uuid.uuid4())
    if not _GUID.match(value):
        raise LakeError(400, "InvalidHeaderValue", "The value for one of the HTTP headers is "
                        "not in the correct format.")
    return value


def acquire(lease: Optional[Lease], proposed: Optional[str], duration: Optional[str]) -> Lease:
    """A new lease, or the same one renewed when ``proposed`` is its id."""
    now, seconds, lease_id = time.time(), _duration(duration), _guid(proposed)
    state = lease.state(now) if lease is not None else "available"
    if state == "breaking":
        raise _conflict("LeaseIsBreakingAndCannotBeAcquired", "There is already a lease "
                        "present, and it is breaking.")
    if state == "leased" and lease.lease_id != lease_id:  # type: ignore[union-attr]
        raise _conflict("LeaseAlreadyPresent", "There is already a lease present.")
    return Lease(lease_id, seconds, now)


def renew(lease: Optional[Lease], lease_id: Optional[str]) -> Lease:
    if lease is None:
        raise _not_present()
    if lease.lease_id != lease_id:
        raise _mismatch()
    state = lease.state(time.time())
    if state == "breaking":
        raise _conflict("LeaseIsBreakingAndCannotBeRenewed", "The lease ID matched, but the "
                        "lease is currently in breaking state and cannot be renewed.")
    if state == "broken":
        raise _conflict("LeaseIsBrokenAndCannotBeRenewed", "The lease ID matched, but the "
                        "lease has been broken explicitly and cannot be renewed.")
    return Lease(lease.lease_id, lease.duration, time.time())


def change(lease: Optional[Lease], lease_id: Optional[str], proposed: Optional[str]) -> Lease:
    if lease is None or not lease.active(time.time()):
        raise _not_present()
    new_id = _guid(proposed)
    if lease_id not in (lease.lease_id, new_id):
        raise _mismatch()
    if lease.state(time.time()) == "breaking":
        raise _conflict("LeaseIsBreakingAndCannotBeChanged", "The lease ID matched, but the "
                        "lease is currently in breaking state and cannot be changed.")
    lease.lease_id = new_id
    return lease


def release(lease: Optional[Lease], lease_id: Optional[str]) -> None:
    if lease is None:
        raise _not_present()
    if lease.lease_id != lease_id:
        raise _mismatch()


def break_(lease: Optional[Lease], period: Optional[str]) -> Tuple[Lease, int]:
    """Start breaking the lease; the seconds until it is broken."""
    now = time.time()
    if lease is None:
        raise _not_present()
    state = lease.state(now)
    if state in ("expired", "broken"):
        lease.break_at = min(lease.break_at or now, now)
        return lease, 0
    remaining = None if lease.expires is None else max(0.0, lease.expires - now)
    if period is not None:
        try:
            wanted = int(period)
        except ValueError:
            wanted = -1
        if not 0 <= wanted <= 60:
            raise LakeError(400, "InvalidHeaderValue", "The value for one of the HTTP headers "
                            "is not in the correct format.")
        remaining = wanted if remaining is None else min(wanted, remaining)
    seconds = 0.0 if remaining is None else remaining
    lease.break_at = now + seconds if lease.break_at is None else min(lease.break_at,
                                                                       now + seconds)
    return lease, int(round(lease.break_at - now))
