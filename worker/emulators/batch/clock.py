"""The service's clock: scaled time, so that a test sees an autoscale interval of five
minutes, or an hour of a spot node's life, pass in seconds.

Scaled time drives what Azure does on its own schedule: autoscale samples and evaluations,
spot preemption, a node's allocation and a preempted node's return. A task's own limits
(``maxWallClockTime``) and the times the API answers are real time: a task runs as long as
its process does.
"""

from __future__ import annotations

import time


class Clock:
    """``scale`` seconds of service time pass in each real second."""

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError("the time scale must be more than 0, not %r" % scale)
        self.scale = scale
        self._real = time.monotonic()
        self._epoch = time.time()

    def now(self) -> float:
        """Service time, in epoch seconds."""
        return self._epoch + (time.monotonic() - self._real) * self.scale

    def rescale(self, scale: float) -> None:
        """Go on from now at another pace (tests change it between cases)."""
        if not scale > 0:
            raise ValueError("the time scale must be more than 0, not %r" % scale)
        self._epoch, self._real, self.scale = self.now(), time.monotonic(), scale

    def real(self, seconds: float) -> float:
        """Real seconds in ``seconds`` of service time."""
        return seconds / self.scale
