"""The physical bound of a benchmark under the emulators' network model, and client CPU.

On a Batch node the limits are the NIC (a Standard_D2a_v4 has about 2,000 Mbit/s), the Data
Lake's time to first byte (milliseconds per request) and the local compute. A benchmark's
bound is what no client can beat there:

    bytes the work must move / link rate
  + the requests that must follow one another x latency (those in parallel overlap)
  + the local compute (DuckDB on local files: the benchmark's floor)

Client CPU per MB moved (user + system time of the client process, divided by the MB it
moved) is what a node pays in cycles whatever the network: every cycle the client spends is
taken from the query or the program sharing the node's two cores.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Optional

MB = 1e6


@dataclass(frozen=True)
class Link:
    """The network model a benchmark runs under (``emulate --link-mbps --latency-ms``)."""

    mbps: Optional[float]
    latency_ms: float

    def bound(self, moved_bytes: float, serial_requests: int = 1,
              compute_s: float = 0.0) -> float:
        """Seconds no client can beat: transfer, unoverlappable latency, local compute."""
        transfer = moved_bytes * 8 / (self.mbps * 1e6) if self.mbps else 0.0
        return transfer + serial_requests * self.latency_ms / 1000 + compute_s

    def describe(self) -> str:
        rate = f"{self.mbps:g} Mbit/s ({self.mbps / 8:g} MB/s)" if self.mbps else "unlimited"
        return f"link {rate}, latency {self.latency_ms:g} ms per request"


def cpu_seconds() -> float:
    """User + system CPU of this process so far (every thread), and of the child processes
    it has waited for (a benchmark that runs its cases as processes)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another running process (the emulators'), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_cpu_seconds(usage) -> float:
    """User + system CPU from a ``wait4`` rusage (a finished child process)."""
    return usage.ru_utime + usage.ru_stime


def per_mb(cpu_s: float, moved_bytes: float) -> float:
    """CPU milliseconds per MB moved."""
    return cpu_s * 1000 / (moved_bytes / MB) if moved_bytes else float("nan")


def cores() -> int:
    return len(os.sched_getaffinity(0))
