"""The autoscale formula language's values: its types, operators, functions and how Azure
writes each value in an evaluation's results text.

Types: double (a float), doubleVec (DoubleVec), string (str), timestamp (Timestamp) and
timeinterval (Interval). The operators are exactly the documented operation table (a
``timestamp - timeinterval``, for instance, is not in it: write ``t + (-1 * interval)``).
Numbers are written as .NET Framework writes a double (15 significant digits, ``1E+15``),
since nothing in Azure's documented results has more digits than that.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Sequence, Union


class EvalError(Exception):
    """A run-time error of the formula; the interpreter adds where it happened."""


# .NET's ranges, which Azure's values live in: DateTime years 1 to 9999, TimeSpan's ticks.
_EARLIEST, _LATEST = -62135596800.0, 253402300800.0
_LONGEST = 922337203685.4775


class Timestamp:
    """A point in time, in seconds since the epoch (UTC)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float):
        if not _EARLIEST <= seconds < _LATEST:  # also NaN
            raise EvalError("The timestamp is outside the years 1 to 9999")
        self.seconds = float(seconds)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timestamp) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(("timestamp", self.seconds))

    def __repr__(self) -> str:
        return "Timestamp(%s)" % format_value(self)

    def datetime(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=self.seconds)


class Interval:
    """A time interval (TimeInterval_*), in seconds."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float):
        if not -_LONGEST <= seconds <= _LONGEST:  # also NaN
            raise EvalError("The timeinterval is outside the range of a TimeSpan")
        self.seconds = float(seconds)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interval) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(("timeinterval", self.seconds))

    def __repr__(self) -> str:
        return "Interval(%s)" % format_value(self)


class DoubleVec(tuple):
    """A vector of doubles (what GetSample returns, or a ``{1, 2}`` literal)."""


Value = Union[float, DoubleVec, str, Timestamp, Interval]


def type_name(value: object) -> str:
    if isinstance(value, float):
        return "double"
    if isinstance(value, DoubleVec):
        return "doubleVec"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, Interval):
        return "timeinterval"
    return type(value).__name__


# --- how Azure writes values ----------------------------------------------------------------

def format_double(value: float) -> str:
    """A double as .NET Framework's ToString() writes it: 1, 0.5, 1E+15, NaN, Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # never "-0"
    return ("%.15g" % value).replace("e", "E")


def format_value(value: Value) -> str:
    """A value as the results text writes it: ``1``, ``[1,2,3]``, ``2016-10-13T19:18:47.805Z``."""
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, DoubleVec):
        return "[" + ",".join(format_double(item) for item in value) + "]"
    if isinstance(value, Timestamp):
        moment = value.datetime()
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)
    if isinstance(value, Interval):
        return _format_interval(value.seconds)
    return str(value)


def _format_interval(seconds: float) -> str:
    """As .NET writes a TimeSpan: [-][d.]hh:mm:ss[.fffffff]."""
    ticks = int(round(abs(seconds) * 10_000_000))
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    text = "%02d:%02d:%02d" % (rest // 3600, rest % 3600 // 60, rest % 60)
    if days:
        text = "%d.%s" % (days, text)
    if fraction:
        text += ".%07d" % fraction
    return ("-" if seconds < 0 and ticks else "") + text


# --- operators ------------------------------------------------------------------------------

def _divide(left: float, right: float) -> float:
    if right == 0:  # a double division in .NET: no exception
        return math.nan if left == 0 or math.isnan(left) else math.copysign(math.inf, left) * (
            math.copysign(1.0, right))
    return left / right


_ARITHMETIC: Dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _divide,
}


def arithmetic(op: str, left: Value, right: Value) -> Value:
    """``left op right`` for the documented operations; anything else is an EvalError."""
    kinds = (type_name(left), type_name(right))
    apply = _ARITHMETIC[op]
    if kinds == ("double", "double"):
        return apply(left, right)  # type: ignore[arg-type]
    if kinds == ("doubleVec", "double"):
        return DoubleVec(apply(item, right) for item in left)  # type: ignore[arg-type,union-attr]
    if kinds == ("doubleVec", "doubleVec"):
        if len(left) != len(right):  # type: ignore[arg-type]
            raise EvalError("The doubleVecs have different lengths (%d and %d)" % (
                len(left), len(right)))  # type: ignore[arg-type]
        return DoubleVec(apply(a, b) for a, b in zip(left, right))  # type: ignore[arg-type]
    result = _time_arithmetic(op, left, right, kinds)
    if result is None:
        raise EvalError("Operator %s is not defined for %s and %s" % (op, kinds[0], kinds[1]))
    return result


def _time_arithmetic(op: str, left: Value, right: Value, kinds: tuple) -> Union[Value, None]:
    seconds = [getattr(value, "seconds", value) for value in (left, right)]
    if (kinds == ("double", "timeinterval") and op == "*") or (
            kinds == ("timeinterval", "double") and op in "*/"):
        return Interval(_ARITHMETIC[op](seconds[0], seconds[1]))
    if kinds == ("timeinterval", "timeinterval") and op in "+-":
        return Interval(_ARITHMETIC[op](seconds[0], seconds[1]))
    if op == "+" and kinds in (("timeinterval", "timestamp"), ("timestamp", "timeinterval")):
        return Timestamp(seconds[0] + seconds[1])
    if kinds == ("timestamp", "timestamp") and op == "-":
        return Interval(seconds[0] - seconds[1])
    return None


_COMPARABLE = ("double", "string", "timestamp", "timeinterval")
_COMPARE: Dict[str, Callable[[object, object], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,  # type: ignore
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "!=": lambda a, b: a != b,  # type: ignore
}


def compare(op: str, left: Value, right: Value) -> float:
    """1 or 0: doubles, strings, timestamps and timeintervals compare with their own kind."""
    kind = type_name(left)
    if kind != type_name(right) or kind not in _COMPARABLE:
        raise EvalError("Operator %s is not defined for %s and %s" % (op, kind, type_name(right)))
    keys = [getattr(value, "seconds", value) for value in (left, right)]
    return 1.0 if _COMPARE[op](keys[0], keys[1]) else 0.0


def negate(op: str, operand: Value) -> Value:
    """Unary ``-`` (double, timeinterval) and ``!`` (double)."""
    if isinstance(operand, float):
        return -operand if op == "-" else (1.0 if operand == 0 else 0.0)
    if isinstance(operand, Interval) and op == "-":
        return Interval(-operand.seconds)
    raise EvalError("Operator %s is not defined for %s" % (op, type_name(operand)))


def truth(value: Value, what: str) -> bool:
    """A condition or a logical operand: a double, nonzero is true."""
    if not isinstance(value, float):
        raise EvalError("%s needs a double, not %s" % (what, type_name(value)))
    return value != 0


# --- functions ------------------------------------------------------------------------------

def flatten(name: str, args: Sequence[Value]) -> List[float]:
    """A doubleVecList (any mix of doubles and doubleVecs) as one list of doubles."""
    items: List[float] = []
    for arg in args:
        if isinstance(arg, float):
            items.append(arg)
        elif isinstance(arg, DoubleVec):
            items.extend(arg)
        else:
            raise EvalError("%s takes doubles and doubleVecs, not %s" % (name, type_name(arg)))
    return items


def _nonempty(name: str, items: List[float]) -> List[float]:
    if not items:
        raise EvalError("%s of an empty doubleVec" % name)
    return items


def _std(items: List[float]) -> float:
    if len(items) < 2:
        return 0.0
    mean = sum(items) / len(items)
    return math.sqrt(sum((item - mean) ** 2 for item in items) / (len(items) - 1))


_AGGREGATES: Dict[str, Callable[[List[float]], float]] = {
    "avg": lambda items: sum(_nonempty("avg", items)) / len(items),
    "len": lambda items: float(len(items)),
    "max": lambda items: max(_nonempty("max", items)),
    "min": lambda items: min(_nonempty("min", items)),
    "norm": lambda items: math.sqrt(sum(item * item for item in items)),
    "range": lambda items: max(_nonempty("range", items)) - min(items),
    "std": lambda items: _std(_nonempty("std", items)),
    "sum": lambda items: float(sum(items)),
}


def _log(log: Callable[[float], float]) -> Callable[[float], float]:
    def safe(value: float) -> float:  # as .NET's Math.Log: no exception outside the domain
        if value < 0 or math.isnan(value):
            return math.nan
        return -math.inf if value == 0 else log(value)
    return safe


def _round(value: float) -> float:
    """Half away from zero."""
    if math.isinf(value) or math.isnan(value):
        return value
    return math.copysign(math.floor(abs(value) + 0.5), value)


_ELEMENTWISE: Dict[str, Callable[[float], float]] = {
    "ceil": lambda v: v if math.isinf(v) or math.isnan(v) else float(math.ceil(v)),
    "floor": lambda v: v if math.isinf(v) or math.isnan(v) else float(math.floor(v)),
    "round": _round, "lg": _log(math.log2), "ln": _log(math.log), "log": _log(math.log10),
}


def _elementwise(name: str, args: Sequence[Value]) -> Value:
    """One double gives a double; anything else (a doubleVec, a list) a doubleVec."""
    apply = _ELEMENTWISE[name]
    if len(args) == 1 and isinstance(args[0], float):
        return apply(args[0])
    return DoubleVec(apply(item) for item in flatten(name, args))


def _vector_and_double(name: str, args: Sequence[Value]) -> tuple:
    vector, number = args
    if not isinstance(vector, DoubleVec) or not isinstance(number, float):
        raise EvalError("%s takes a doubleVec and a double, not %s and %s" % (
            name, type_name(vector), type_name(number)))
    return vector, number


def _percentile(args: Sequence[Value]) -> float:
    vector, percent = _vector_and_double("percentile", args)
    if not vector:
        raise EvalError("percentile of an empty doubleVec")
    if not 0 <= percent <= 100:
        raise EvalError(
            "percentile takes a percentile from 0 to 100, not %s" % format_double(percent))
    ordered = sorted(vector)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))  # the nearest-rank element
    return ordered[rank - 1]


def _val(args: Sequence[Value]) -> float:
    vector, index = _vector_and_double("val", args)
    if math.isnan(index) or not 0 <= index < len(vector):
        raise EvalError("val: index %s is outside the doubleVec of %d elements" % (
            format_double(index), len(vector)))
    return vector[int(index)]


def call_function(name: str, args: Sequence[Value]) -> Value:
    """Apply one of the pure functions (not rand, stop or time, which need the run)."""
    if name in _AGGREGATES:
        return _AGGREGATES[name](flatten(name, args))
    if name in _ELEMENTWISE:
        return _elementwise(name, args)
    return _percentile(args) if name == "percentile" else _val(args)


# --- timestamps -----------------------------------------------------------------------------

_W3C = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$")
_RFC1123 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def parse_time(text: str) -> Timestamp:
    """time("..."): W3C-DTF (ISO 8601 profile, up to 7 fractional digits) or RFC 1123."""
    try:
        return Timestamp(_parse_time(text.strip()))
    except ValueError:
        raise EvalError("time: '%s' is neither a W3C-DTF nor an RFC 1123 date" % text) from None


def _parse_time(text: str) -> float:
    match = _RFC1123.match(text)
    if match:
        day, month, year, hour, minute, second = match.groups()
        moment = datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour),
                          int(minute), int(second), tzinfo=timezone.utc)
        return moment.timestamp()
    match = _W3C.match(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0),
                      int(minute or 0), int(second or 0), tzinfo=_zone(zone))
    return moment.timestamp() + float("0." + (fraction or "0"))


def _zone(zone: Union[str, None]) -> timezone:
    if not zone or zone == "Z":
        return timezone.utc
    sign = -1 if zone[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))


_MEMBERS: Dict[str, Callable[[datetime], int]] = {
    "year": lambda m: m.year, "month": lambda m: m.month, "day": lambda m: m.day,
    "weekday": lambda m: m.isoweekday(), "hour": lambda m: m.hour,
    "minute": lambda m: m.minute, "second": lambda m: m.second,
}


def member(value: Value, name: str) -> float:
    """A timestamp's year, month, day, weekday (1 = Monday), hour, minute or second."""
    if not isinstance(value, Timestamp):
        raise EvalError("%s has no member %s" % (type_name(value), name))
    if name not in _MEMBERS:
        raise EvalError("timestamp has no member %s" % name)
    return float(_MEMBERS[name](value.datetime()))
