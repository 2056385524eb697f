"""Azure Batch's autoscale formula language: parse a pool's formula, evaluate it over the
pool's sample history, and answer with Azure's results text and errors.

A pure module (no I/O, no clock, no threads): the local Batch service records a sample of
its service variables every 30 seconds of its (possibly scaled) clock into a
:class:`SampleHistory` and evaluates the pool's formula every evaluation interval::

    formula = parse(pool_formula)              # FormulaError: the 400 Azure answers
    history.record(now, {"ActiveTasks": 3, "RunningTasks": 1, ...})
    run = evaluate(formula, history, now, {"CurrentLowPriorityNodes": 0, ...})
    run.text   # "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=1;$NodeDeallocationOption=..."
    run.error  # None, or the AutoScaleRun error (e.g. InsufficientSampleData)

Facts come from learn.microsoft.com (batch-automatic-scaling, Pool - Evaluate Auto Scale, the
pool autoscale event, Batch status and error codes); what is inferred rather than documented
is listed in docs/autoscale.md.
"""

from __future__ import annotations

import bisect
import math
import random as _random
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._autoscale_syntax import (
    ALIASES,
    DEALLOCATION_OPTIONS,
    PLAIN,
    SAMPLED,
    SETTABLE,
    TIME_INTERVALS,
    Binary,
    Call,
    FormulaError,
    Member,
    Method,
    Name,
    Number,
    Pos,
    Statement,
    String,
    Ternary,
    Unary,
    Vector,
    parse_statements,
    where,
)
from ._autoscale_values import (
    DoubleVec,
    EvalError,
    Interval,
    Timestamp,
    Value,
    arithmetic,
    call_function,
    compare,
    flatten,
    format_value,
    member,
    negate,
    parse_time,
    truth,
    type_name,
)

__all__ = [
    "DoubleVec", "Evaluation", "Formula", "FormulaError", "Interval", "SampleHistory",
    "Timestamp", "evaluate", "parse",
]

SAMPLE_PERIOD = 30.0  # "samples are obtained every 30 seconds"
DEFAULT_SAMPLE_PERCENT = 70.0  # GetSample(interval) without a percent: Azure said "wanted 70%"
# The AutoScaleRun error Azure reports for missing samples (Pool - Evaluate Auto Scale); the
# code and message of other run-time errors are this emulator's own (Azure's are undocumented).
INSUFFICIENT = (
    "InsufficientSampleData", "Autoscale evaluation failed due to insufficient sample data")
RUNTIME = ("FormulaEvaluationError", "Autoscale evaluation failed due to an error in the formula")
_DEFAULTS: Dict[str, Union[float, str]] = {"NodeDeallocationOption": "requeue"}


class Formula:
    """A parsed formula: its text and its statements."""

    def __init__(self, text: str, statements: Sequence[Statement]):
        self.text = text
        self.statements = tuple(statements)

    def __repr__(self) -> str:
        return "Formula(%d statements)" % len(self.statements)


def parse(text: str) -> Formula:
    """Parse ``text``; a syntax or semantic error raises FormulaError (Azure's 400 error)."""
    return Formula(text, parse_statements(text))


# --- samples --------------------------------------------------------------------------------

def _service_name(name: str) -> str:
    return name if name.startswith("$") else "$" + name


class SampleHistory:
    """The samples of the read-only service variables, as Batch collects them.

    ``record`` keeps what it is given (the caller decides the timestamps, normally every
    ``period`` seconds). A variable never recorded behaves as Azure's do before any sample
    exists: no samples, 0 percent. Samples older than the longest look-back a formula has
    asked for (at least ``keep`` seconds) are dropped.
    """

    def __init__(self, period: float = SAMPLE_PERIOD, keep: float = 3600.0):
        self.period = float(period)
        self._keep_seconds = float(keep)
        self._keep_count = 1
        self._series: Dict[str, Tuple[List[float], List[float]]] = {}

    def record(self, timestamp: float, values: Mapping[str, float]) -> None:
        """Add one sample of each variable in ``values`` (``ActiveTasks`` or ``$ActiveTasks``)."""
        named = {_service_name(name): float(value) for name, value in values.items()}
        unknown = sorted(set(named) - set(SAMPLED + PLAIN))
        if unknown:
            raise ValueError("not a read-only service variable: %s" % ", ".join(unknown))
        if "$PendingTasks" not in named and {"$ActiveTasks", "$RunningTasks"} <= set(named):
            named["$PendingTasks"] = named["$ActiveTasks"] + named["$RunningTasks"]
        for name, value in named.items():
            times, samples = self._series.setdefault(name, ([], []))
            if times and timestamp < times[-1]:
                raise ValueError("sample of %s at %s is older than the last one (%s)" % (
                    name, timestamp, times[-1]))
            times.append(float(timestamp))
            samples.append(value)
            self._prune(times, samples)

    def retain(self, seconds: float = 0.0, count: int = 0) -> None:
        """Keep at least ``seconds`` of history and the last ``count`` samples from now on."""
        self._keep_seconds = max(self._keep_seconds, seconds)
        self._keep_count = max(self._keep_count, count)

    def _prune(self, times: List[float], samples: List[float]) -> None:
        cut = bisect.bisect_right(times, times[-1] - self._keep_seconds - self.period)
        cut = min(cut, max(0, len(times) - self._keep_count))
        if cut:
            del times[:cut], samples[:cut]

    def latest(self, name: str, count: int) -> List[float]:
        """The last ``count`` samples, oldest first (fewer if fewer exist)."""
        samples = self._series.get(name, ([], []))[1]
        return samples[max(0, len(samples) - count):] if count > 0 else []

    def window(self, name: str, low: float, high: float) -> List[float]:
        """The samples taken after ``low`` and up to ``high``, oldest first."""
        times, samples = self._series.get(name, ([], []))
        return samples[bisect.bisect_right(times, low):bisect.bisect_right(times, high)]

    def percent(self, name: str, low: float, high: float) -> float:
        """How many of the samples a window should hold it holds, in percent (at most 100)."""
        expected = max(1, math.floor((high - low) / self.period + 1e-9))
        return min(100.0, 100.0 * len(self.window(name, low, high)) / expected)

    def count(self, name: str) -> int:
        return len(self._series.get(name, ([], []))[0])

    def begin(self, name: str) -> Optional[float]:
        times = self._series.get(name, ([], []))[0]
        return times[0] if times else None


# --- evaluation -----------------------------------------------------------------------------

class Evaluation:
    """One evaluation: what the formula set, Azure's results text, and the error if any.

    ``values`` maps each variable the formula set (``$TargetDedicatedNodes``, ...,
    ``cappedPoolSize``) to its value; empty when the evaluation failed, since Azure then
    leaves the pool as it is. ``targets`` holds the effective settable values (set by the
    formula, else the pool's current ones).
    """

    def __init__(self, timestamp: float, values: Dict[str, Value], targets: Dict[str, Value],
                 text: str, error: Optional[FormulaError]):
        self.timestamp = timestamp
        self.values = values
        self.targets = targets
        self.text = text
        self.error = error

    @property
    def target_dedicated_nodes(self) -> int:
        return _node_count(self.targets["$TargetDedicatedNodes"])

    @property
    def target_low_priority_nodes(self) -> int:
        return _node_count(self.targets["$TargetLowPriorityNodes"])

    @property
    def node_deallocation_option(self) -> str:
        return str(self.targets["$NodeDeallocationOption"])

    def __repr__(self) -> str:
        return "Evaluation(%r, error=%r)" % (self.text, self.error and self.error.code)


def _node_count(value: Value) -> int:
    """A target as a node count: fractions truncated; negative or not finite: 0 (inference)."""
    number = float(value) if isinstance(value, float) else 0.0
    return int(number) if math.isfinite(number) and number > 0 else 0


def evaluate(formula: Union[Formula, str], history: SampleHistory, now: float,
             current: Mapping[str, Union[float, str]],
             random: Optional[_random.Random] = None) -> Evaluation:
    """Run ``formula`` at ``now`` (seconds since the epoch) over ``history``.

    ``current`` holds the pool's own values, with or without the ``$``: its targets
    (``TargetDedicatedNodes``, ``TargetLowPriorityNodes``, ``NodeDeallocationOption``: what a
    formula reads before setting them and what the results show when it does not) and the
    read-only plain values (``CurrentDedicatedNodes``, ``CurrentLowPriorityNodes``,
    ``TaskSlotsPerNode``, ``UsableNodeCount``); missing ones are 0 (``requeue``).
    """
    if isinstance(formula, str):
        formula = parse(formula)
    pool = {_service_name(name): value for name, value in current.items()}
    run = _Run(history, float(now), pool, random or _random.Random())
    try:
        run.execute(formula.statements)
    except FormulaError as error:
        settable = {name: run.pool_value(name) for name in SETTABLE}
        return Evaluation(now, {}, settable, _results(settable, {}), error)
    settable = {name: run.settable(name) for name in SETTABLE}
    user = {name: value for name, value in run.env.items() if name not in SETTABLE + tuple(ALIASES)}
    values = {name: settable[name] for name in SETTABLE if run.was_set(name)}
    values.update(user)
    return Evaluation(now, values, settable, _results(settable, user), None)


def _results(settable: Mapping[str, Value], user: Mapping[str, Value]) -> str:
    """``$TargetDedicatedNodes=..;$TargetLowPriorityNodes=..;$NodeDeallocationOption=..``
    then the user variables by name, case-insensitively (as Azure's results list them)."""
    parts = ["%s=%s" % (name, format_value(settable[name])) for name in SETTABLE]
    for name in sorted(user, key=lambda name: (name.lower(), name.swapcase())):
        parts.append("%s=%s" % (name, format_value(user[name])))
    return ";".join(parts)


class _Stop(Exception):
    """stop(): the formula ends here, keeping what it set so far."""


class _Run:
    """The interpreter: one evaluation's variables and the tree-walking evaluator."""

    def __init__(self, history: SampleHistory, now: float, pool: Dict[str, Union[float, str]],
                 rng: _random.Random):
        self.history = history
        self.now = now
        self.pool = pool
        self.rng = rng
        self.env: Dict[str, Value] = {}
        self._nodes: Dict[type, Callable[[object], Value]] = {
            Number: lambda node: node.value, String: lambda node: node.value,  # type: ignore
            Name: self.name, Vector: self.vector, Unary: self.unary, Binary: self.binary,
            Ternary: self.ternary, Call: self.call, Method: self.method, Member: self.member,
        }
        self._methods: Dict[str, Callable[[str, List[Value], Pos], Value]] = {
            "GetSample": self.get_sample, "GetSamplePercent": self.get_sample_percent,
            "GetSamplePeriod": lambda name, args, pos: Interval(self.history.period),
            "Count": lambda name, args, pos: float(self.history.count(name)),
            "HistoryBeginTime": self.history_begin_time,
        }

    def execute(self, statements: Sequence[Statement]) -> None:
        try:
            for statement in statements:
                value = self.evaluate(statement.expr)
                if statement.target is not None:
                    self.assign(statement.target, value, statement.pos)
        except _Stop:
            pass

    def assign(self, name: str, value: Value, pos: Pos) -> None:
        canonical = ALIASES.get(name, name)
        if canonical == "$NodeDeallocationOption" and value not in DEALLOCATION_OPTIONS:
            raise _error(RUNTIME, pos, "$NodeDeallocationOption must be one of %s, not %s" % (
                ", ".join(DEALLOCATION_OPTIONS), format_value(value)))
        if canonical in SETTABLE[:2] and not isinstance(value, float):
            raise _error(RUNTIME, pos, "%s must be a double, not %s" % (name, type_name(value)))
        self.env[name] = value

    # Settable variables: the full name wins over its alias, both over the pool's value.
    def was_set(self, name: str) -> bool:
        return any(candidate in self.env for candidate in (name,) + _aliases_of(name))

    def settable(self, name: str) -> Value:
        for candidate in (name,) + _aliases_of(name):
            if candidate in self.env:
                return self.env[candidate]
        return self.pool_value(name)

    def pool_value(self, name: str) -> Value:
        value = self.pool.get(name, _DEFAULTS.get(name[1:], 0.0))
        return value if isinstance(value, str) else float(value)

    def evaluate(self, node: object) -> Value:
        try:
            return self._nodes[type(node)](node)
        except EvalError as error:  # this node's own operation failed
            raise _error(RUNTIME, node.pos, str(error)) from None  # type: ignore[attr-defined]

    def name(self, node: Name) -> Value:
        name = node.name
        if name in TIME_INTERVALS:
            return Interval(TIME_INTERVALS[name])
        if name in DEALLOCATION_OPTIONS or name in self.env:
            return self.env.get(name, name)
        if ALIASES.get(name, name) in SETTABLE:
            return self.settable(ALIASES.get(name, name))
        if name in PLAIN:
            return self.pool_value(name)
        if name in SAMPLED:
            raise EvalError("%s is a set of samples: use %s.GetSample(...)" % (name, name))
        raise EvalError("%s is not defined" % name)

    def vector(self, node: Vector) -> Value:
        return DoubleVec(flatten("{...}", [self.evaluate(item) for item in node.items]))

    def unary(self, node: Unary) -> Value:
        return negate(node.op, self.evaluate(node.operand))

    def binary(self, node: Binary) -> Value:
        left = self.evaluate(node.left)
        if node.op in ("&&", "||"):
            decided = truth(left, node.op) == (node.op == "||")
            if decided:  # short-circuit: false && ..., true || ...
                return 1.0 if node.op == "||" else 0.0
            return 1.0 if truth(self.evaluate(node.right), node.op) else 0.0
        right = self.evaluate(node.right)
        if node.op in ("+", "-", "*", "/"):
            return arithmetic(node.op, left, right)
        return compare(node.op, left, right)

    def ternary(self, node: Ternary) -> Value:
        chosen = node.then if truth(self.evaluate(node.test), "?:") else node.other
        return self.evaluate(chosen)

    def member(self, node: Member) -> Value:
        return member(self.evaluate(node.target), node.member)

    def call(self, node: Call) -> Value:
        args = [self.evaluate(arg) for arg in node.args]
        if node.function == "stop":
            raise _Stop()
        if node.function == "rand":
            return self.rng.random()
        if node.function == "time":
            if not args:
                return Timestamp(self.now)
            if not isinstance(args[0], str):
                raise EvalError("time takes a string, not %s" % type_name(args[0]))
            return parse_time(args[0])
        return call_function(node.function, args)

    def method(self, node: Method) -> Value:
        args = [self.evaluate(arg) for arg in node.args]
        return self._methods[node.method](node.variable, args, node.pos)

    # --- the sample methods -----------------------------------------------------------------

    def get_sample(self, name: str, args: List[Value], pos: Pos) -> Value:
        """GetSample(count) | GetSample(start[, end][, percent]), start/end timeinterval
        (look-back from now) or timestamp; fewer than ``percent`` of the samples: an error."""
        if len(args) == 1 and isinstance(args[0], float):
            if math.isnan(args[0]):
                raise EvalError("GetSample takes a count, not NaN")
            count = int(max(0.0, min(args[0], 1e9)))
            self.history.retain(count=count)
            return DoubleVec(self.history.latest(name, count))
        low, high, rest = self.window("GetSample", args)
        if len(rest) > 1 or (rest and not isinstance(rest[0], float)):
            raise EvalError("GetSample takes a count, or a start, an end and a percent")
        wanted = rest[0] if rest else DEFAULT_SAMPLE_PERCENT
        received = self.history.percent(name, low, high)
        if received < wanted:  # type: ignore[operator]
            raise _error(INSUFFICIENT, pos, "Insufficient data from data set: %s wanted %s%%, "
                         "received %s%%" % (name, format_value(wanted), format_value(received)))
        return DoubleVec(self.history.window(name, low, high))

    def get_sample_percent(self, name: str, args: List[Value], pos: Pos) -> Value:
        low, high, rest = self.window("GetSamplePercent", args)
        if rest:
            raise EvalError("GetSamplePercent takes a start and an end")
        return self.history.percent(name, low, high)

    def history_begin_time(self, name: str, args: List[Value], pos: Pos) -> Value:
        begin = self.history.begin(name)
        return Timestamp(self.now if begin is None else begin)

    def window(self, method: str, args: List[Value]) -> Tuple[float, float, List[Value]]:
        """The window the leading time arguments name, and the arguments after them."""
        times: List[float] = []
        for arg in args[:2]:
            if isinstance(arg, Interval):
                times.append(self.now - arg.seconds)  # a look-back from now
            elif isinstance(arg, Timestamp):
                times.append(arg.seconds)
            else:
                break
        if not times:
            raise EvalError("%s takes a timeinterval or a timestamp, not %s" % (
                method, type_name(args[0])))
        rest = args[len(times):]
        if len(times) == 1:  # from then until now
            times.append(self.now)
        low, high = min(times), max(times)
        self.history.retain(seconds=self.now - low)
        return low, high, rest


def _aliases_of(name: str) -> Tuple[str, ...]:
    return tuple(alias for alias, full in ALIASES.items() if full == name)


def _error(kind: Tuple[str, str], pos: Pos, text: str) -> FormulaError:
    return FormulaError(kind[0], kind[1], values=[{"name": "Message", "value": where(pos, text)}])
