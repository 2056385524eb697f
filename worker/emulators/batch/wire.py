"""How Batch writes things on the wire: times, durations, eTags, URLs, list pages.

Durations are ISO 8601 (``PT10M``, ``P1DT2H``, ``PT0.5S``); a constraint left unset is
answered as Batch answers it, the largest .NET TimeSpan (``maxWallClockTime``) or seven days
(``retentionTime``).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Optional

UNLIMITED = "P10675199DT2H48M5.4775807S"  # TimeSpan.MaxValue: no limit
RETENTION = "P7D"
ODATA_MINIMAL = "application/json; odata=minimalmetadata"
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def iso(epoch: Optional[float]) -> Optional[str]:
    """``2024-05-01T10:00:00.123456Z``, or None."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> Optional[float]:
    """Epoch seconds of an ISO 8601 time with a zone, or None."""
    match = _STAMP.match(text.strip())
    if not match:
        return None
    fraction = float(match.group(7) or 0)
    zone = match.group(8)
    base = datetime(*(int(g) for g in match.groups()[:6]), tzinfo=timezone.utc).timestamp()
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        base -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return base + fraction


def duration_seconds(text: str) -> Optional[float]:
    """Seconds of an ISO 8601 duration, or None when it is not one."""
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        return None
    days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def duration(seconds: float) -> str:
    """An ISO 8601 duration as Batch writes one: ``PT5M``, ``PT1H30M``, ``PT0.5S``."""
    if seconds <= 0:
        return "PT0S"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + ("%dD" % days if days else "")
    clock = "".join("%d%s" % (n, unit) for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if secs:
        clock += ("%d" % secs if secs == int(secs) else ("%.7f" % secs).rstrip("0")) + "S"
    return text + ("T" + clock if clock else "")


def etag(version: int, created: float) -> str:
    """An eTag in Batch's form (``0x8D...``), different for every version of a resource."""
    return "0x8D%013X" % ((int(created * 1000) * 4096 + version) & 0xFFFFFFFFFFFFF)


def http_date(epoch: Optional[float] = None) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))
