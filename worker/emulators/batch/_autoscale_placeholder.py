"""A stand-in for ``autoscale.py`` (the formula language, written beside this service) until
it lands: it knows only statements that set a variable to a number or a deallocation
option (``$TargetDedicatedNodes = 2;``) and ``//`` comments. Removed once autoscale.py is
here; nothing else imports it."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

_STATEMENT = re.compile(r"^\s*(\$?\w+)\s*=\s*([\w.]+)\s*$")


class FormulaError(Exception):
    def __init__(self, code: str, message: str, values: Sequence[Dict[str, str]] = ()):
        super().__init__(message)
        self.code, self.message, self.values = code, message, list(values)


class Formula:
    def __init__(self, text: str, assignments: Dict[str, str]) -> None:
        self.text, self.assignments = text, assignments


def parse(text: str) -> Formula:
    assignments: Dict[str, str] = {}
    body = "\n".join(line.split("//")[0] for line in text.splitlines())
    for statement in filter(str.strip, body.split(";")):
        match = _STATEMENT.match(statement)
        if not match:
            raise FormulaError("AutoScalingFormulaSyntaxError", "The specified autoscale "
                               "formula has a syntax error.",
                               [{"key": "Message", "value": statement.strip()}])
        assignments[match.group(1)] = match.group(2)
    return Formula(text, assignments)


class SampleHistory:
    def __init__(self) -> None:
        self.samples: List[Any] = []

    def record(self, timestamp: float, values: Mapping[str, float]) -> None:
        self.samples.append((timestamp, dict(values)))


class Evaluation:
    def __init__(self, targets: Dict[str, Any]) -> None:
        self.targets, self.error = targets, None
        self.text = ";".join("%s=%s" % item for item in targets.items())
        self.target_dedicated_nodes = int(float(targets["$TargetDedicatedNodes"]))
        self.target_low_priority_nodes = int(float(targets["$TargetLowPriorityNodes"]))
        self.node_deallocation_option = str(targets["$NodeDeallocationOption"])


def evaluate(formula: Formula, history: SampleHistory, now: float,
             current: Mapping[str, Any], random: Optional[Any] = None) -> Evaluation:
    targets = {"$" + k: current.get(k, 0) for k in ("TargetDedicatedNodes",
                                                    "TargetLowPriorityNodes")}
    targets["$NodeDeallocationOption"] = current.get("NodeDeallocationOption", "requeue")
    for name, value in formula.assignments.items():
        targets["$" + name.lstrip("$")] = value
    return Evaluation(targets)
