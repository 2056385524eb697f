"""A pool's autoscale, as the service runs it: a sample of the pool's service variables
every 30 seconds of service time (``$ActiveTasks``, ``$RunningTasks``, ``$PendingTasks``,
``$SucceededTasks``, ``$FailedTasks``, ``$PreemptedNodeCount``, and the plain
``$CurrentDedicatedNodes``, ``$CurrentLowPriorityNodes``, ``$UsableNodeCount``,
``$TaskSlotsPerNode``), the formula evaluated at once when autoscale is enabled and then
every evaluation interval, and the pool resized to the targets it sets (shrinking by its
``$NodeDeallocationOption``). The formula language itself is ``autoscale.py``, a pure
module: parse, sample history, evaluate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import autoscale
from .errors import BatchError
from .wire import duration, iso

if TYPE_CHECKING:
    from .pool import Pool

SAMPLE_EVERY = 30.0  # service seconds between samples, as Batch takes them


def formula_error(error: Exception) -> BatchError:
    """A formula that does not parse: Batch's 400, with the formula module's code, message
    and values (``AutoScalingFormulaSyntaxError``, ...)."""
    code = getattr(error, "code", None) or "AutoScalingFormulaSyntaxError"
    values = [(v.get("key") or v.get("name", ""), v.get("value", ""))
              for v in getattr(error, "values", None) or []]
    return BatchError(code, getattr(error, "message", None) or str(error), values, status=400)


class AutoScaler:
    """One pool's formula, interval, sample history and last run."""

    def __init__(self, text: str, interval: float, now: float) -> None:
        self.module = autoscale
        self.text = text
        self.formula = self.module.parse(text)
        self.interval = interval
        self.history = self.module.SampleHistory()
        self.next_sample = now
        self.next_run = now  # Batch evaluates a formula as soon as it is enabled
        self.last_run: Optional[Dict[str, Any]] = None

    def tick(self, pool: "Pool", now: float) -> float:
        """Record the samples and run the evaluation that are due; seconds to the next."""
        if self.next_sample <= now:
            self.history.record(now, pool.metrics())
            self.next_sample = max(self.next_sample + SAMPLE_EVERY, now)
        if self.next_run <= now:
            evaluation = self.module.evaluate(self.formula, self.history, now, pool.current())
            self.last_run = _run_json(evaluation)
            self.next_run = now + self.interval
            if evaluation.error is None:
                pool.set_targets(evaluation.target_dedicated_nodes,
                                 evaluation.target_low_priority_nodes,
                                 evaluation.node_deallocation_option)
        return min(self.next_sample, self.next_run) - now

    def evaluate_text(self, text: str, pool: "Pool", now: float) -> Dict[str, Any]:
        """Evaluate-autoscale: another formula over this pool's history, not applied."""
        try:
            formula = self.module.parse(text)
        except Exception as e:  # the formula module's FormulaError
            raise formula_error(e) from None
        return _run_json(self.module.evaluate(formula, self.history, now, pool.current()))

    def to_json(self) -> Dict[str, Any]:
        document: Dict[str, Any] = {"autoScaleFormula": self.text,
                                    "autoScaleEvaluationInterval": duration(self.interval)}
        if self.last_run is not None:
            document["autoScaleRun"] = self.last_run
        return document


def _run_json(evaluation: Any) -> Dict[str, Any]:
    """An AutoScaleRun: when, the results text, and the error of a failed evaluation."""
    import time

    run: Dict[str, Any] = {"timestamp": iso(time.time()), "results": evaluation.text}
    error = evaluation.error
    if error is not None:
        values: List[Tuple[str, str]] = [
            (v.get("name") or v.get("key", ""), v.get("value", ""))
            for v in getattr(error, "values", None) or []]
        run["error"] = {"code": getattr(error, "code", "FormulaEvaluationError"),
                        "message": getattr(error, "message", str(error)),
                        "values": [{"name": k, "value": v} for k, v in values]}
    return run
