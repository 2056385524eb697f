"""Faults on demand: make an emulator misbehave the way a real service sometimes does.

A rule names a service (``lake``, ``vault``, ``identity``, the local Batch account's
``batch`` and ``arm``, or ``*``), an operation (see each service's operation names, or
``*``) and what goes wrong:

- ``status``: answer ``status`` (503 ``ServerBusy``, 500 ``InternalError``, 429 ...) in the
  service's own error shape, with ``Retry-After`` when ``retry_after`` is given;
- ``latency``: wait ``delay`` seconds, then serve the request normally;
- ``truncate``: serve the request but cut the body half-way and close the connection;
- ``drop``: close the connection without answering;
- ``item``: serve a request that answers item by item (Batch's ``task.addcollection``) but
  answer one item with ``status`` and ``code`` instead of doing it, as Batch answers a
  task's ``serverError`` (5xx) or ``clientError`` inside a 200; each item the rule answers
  uses one of its ``times``.

A rule fires ``times`` times (None: forever), each time with ``probability`` drawn from a
seeded generator, so random faults are reproducible.
"""

from __future__ import annotations

import random
import threading
from typing import Any, List, NamedTuple, Optional

from .config import json_kind

KINDS = ("status", "latency", "truncate", "drop", "item")
SERVICES = ("*", "lake", "vault", "identity", "batch", "arm")
_DEFAULT_CODES = {429: "TooManyRequests", 500: "InternalError", 503: "ServerBusy"}


class Fault(NamedTuple):
    """What to do to one request."""

    kind: str
    status: int = 503
    code: str = "ServerBusy"
    retry_after: Optional[float] = None
    delay: float = 0.0


class _Rule:
    def __init__(
        self, service: str, operation: str, fault: Fault, times: Optional[int], probability: float
    ) -> None:
        self.service = service
        self.operation = operation
        self.fault = fault
        self.remaining = times
        self.probability = probability

    def matches(self, service: str, operation: str) -> bool:
        return self.service in ("*", service) and self.operation in ("*", operation)


class Faults:
    """The fault rules of one emulator set; thread-safe."""

    def __init__(self, seed: Optional[int] = None) -> None:
        self._rules: List[_Rule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(
        self,
        service: str = "*",
        operation: str = "*",
        kind: str = "status",
        status: int = 503,
        code: Optional[str] = None,
        retry_after: Optional[float] = None,
        delay: float = 0.0,
        times: Optional[int] = 1,
        probability: float = 1.0,
    ) -> Fault:
        """Add a rule; the first matching rule that fires wins. Returns the fault."""
        if kind not in KINDS:
            raise ValueError("fault kind must be one of %s, not %r" % (", ".join(KINDS), kind))
        _check(service in SERVICES, "service must be one of %s, not %r"
               % (", ".join(SERVICES), service))
        _check(isinstance(status, int) and 100 <= status <= 599,
               "status must be an HTTP status (100-599), not %r" % (status,))
        _check(times is None or (isinstance(times, int) and times > 0),
               "times must be a positive whole number or null (always), not %r" % (times,))
        _check(isinstance(probability, (int, float)) and 0 <= probability <= 1,
               "probability must be between 0 and 1, not %r" % (probability,))
        _check(isinstance(delay, (int, float)) and delay >= 0,
               "delay must be zero or more seconds, not %r" % (delay,))
        fault = Fault(kind, status, code or _DEFAULT_CODES.get(status, "InternalError"),
                      retry_after, delay)
        with self._lock:
            self._rules.append(_Rule(service, operation, fault, times, probability))
        return fault

    def reseed(self, seed: Optional[int]) -> None:
        """Restart the random draws from ``seed``: random faults become reproducible."""
        with self._lock:
            self._random.seed(seed)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = []

    def pick(self, service: str, operation: str) -> Optional[Fault]:
        """The fault for this request, if a rule fires; uses up one of the rule's times."""
        return self._pick(service, operation, items=False)

    def pick_item(self, service: str, operation: str) -> Optional[Fault]:
        """The ``item`` fault for one item of a request that answers item by item."""
        return self._pick(service, operation, items=True)

    def _pick(self, service: str, operation: str, items: bool) -> Optional[Fault]:
        with self._lock:
            for rule in self._rules:
                if (rule.fault.kind == "item") != items or \
                        not rule.matches(service, operation):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return rule.fault
        return None


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


RULE_KEYS = ("service", "operation", "kind", "status", "code", "retry_after", "delay", "times",
             "probability")


def add_rules(faults: Faults, rules: Any) -> None:
    """Add rules given as dicts (the ``--faults FILE`` JSON list) with ``add``'s keywords.

    ValueError names the rule (counted from 1) and what is wrong with it.
    """
    if not isinstance(rules, list):
        raise ValueError("the fault rules must be a JSON list of objects, not %s"
                         % json_kind(rules))
    for number, rule in enumerate(rules, 1):
        if not isinstance(rule, dict):
            raise ValueError("fault rule %d must be a JSON object, not %s"
                             % (number, json_kind(rule)))
        unknown = sorted(set(rule) - set(RULE_KEYS))
        if unknown:
            raise ValueError("fault rule %d has unknown key %r; the keys are %s"
                             % (number, unknown[0], ", ".join(RULE_KEYS)))
        try:
            faults.add(**rule)
        except ValueError as e:
            raise ValueError("fault rule %d: %s" % (number, e)) from e
