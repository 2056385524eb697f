"""The autoscale formula language's syntax: its vocabulary, tokens, tree and parser.

A formula is statements separated by ``;`` (line breaks are plain white space, so one
statement may span lines), each an assignment ``name = expression`` or a bare expression;
``//`` and ``/* */`` comments. Expressions follow C's precedence: ``?:``, ``||``, ``&&``,
``== !=``, ``< <= > >=``, ``+ -``, ``* /``, unary ``- !``, then ``.member`` and
``$Variable.Method(...)``. Positions are 1-based lines and columns, as Azure's messages
("Line 9, Col 43: ...") count them.

What the parser can know without running the formula it checks here (unknown functions and
methods, argument counts, assignments to read-only variables, the size limits); everything
else (types, samples, undefined variables) is found when the formula runs.
"""

from __future__ import annotations

import re
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

MAX_LENGTH = 8192  # "The formula string cannot exceed 8 KB" (SDK: 8192 characters)
MAX_STATEMENTS = 100  # "can include up to 100 statements that are separated by semicolons"
# This emulator's own limits (Azure's are undocumented), keeping parser and evaluator well
# inside Python's recursion limit: brackets, calls and unary operators nested, and the depth
# of a statement's tree (a chain a + b + c ... is as deep as it is long).
MAX_NESTING = 64
MAX_DEPTH = 128

# The read-write service variables, in the order Azure's results text lists them.
SETTABLE = ("$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption")
ALIASES = {
    "$TargetDedicated": "$TargetDedicatedNodes", "$TargetLowPriority": "$TargetLowPriorityNodes",
}
# Read-only metrics only reachable through their sample methods.
SAMPLED = (
    "$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
    "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes",
    "$SampleNodeCount", "$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks",
    "$FailedTasks", "$PreemptedNodeCount",
)
# Read-only values of the pool itself, used as plain numbers (and also sampled, if recorded).
PLAIN = (
    "$CurrentDedicatedNodes", "$CurrentLowPriorityNodes", "$TaskSlotsPerNode", "$UsableNodeCount",
)
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
TIME_INTERVALS: Dict[str, float] = {  # seconds
    "TimeInterval_Zero": 0.0, "TimeInterval_100ns": 1e-7, "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3, "TimeInterval_Second": 1.0, "TimeInterval_Minute": 60.0,
    "TimeInterval_Hour": 3600.0, "TimeInterval_Day": 86400.0, "TimeInterval_Week": 604800.0,
    "TimeInterval_Year": 365 * 86400.0,
}
# Functions and sample methods with the argument counts they take (min, max; None: any).
FUNCTION_ARITY: Dict[str, Tuple[int, Optional[int]]] = {
    "avg": (1, None), "ceil": (1, None), "floor": (1, None), "len": (1, None),
    "lg": (1, None), "ln": (1, None), "log": (1, None), "max": (1, None), "min": (1, None),
    "norm": (1, None), "percentile": (2, 2), "rand": (0, 0), "range": (1, None),
    "round": (1, None), "std": (1, None), "stop": (0, 0), "sum": (1, None), "time": (0, 1),
    "val": (2, 2),
}
METHOD_ARITY: Dict[str, Tuple[int, Optional[int]]] = {
    "GetSample": (1, 3), "GetSamplePercent": (1, 2), "GetSamplePeriod": (0, 0),
    "Count": (0, 0), "HistoryBeginTime": (0, 0),
}

# Batch's error codes and messages (learn.microsoft.com, Batch status and error codes).
SYNTAX_ERROR = (
    "AutoScalingFormulaSyntaxError", "The specified auto-scaling formula has a syntax error.")
TOO_LONG = (
    "AutoScalingFormulaTooLong", "The specified auto-scaling formula exceeds lengths limit.")


class FormulaError(Exception):
    """An error as Azure reports it: a stable ``code``, a ``message`` and ``values``.

    Parse errors are the 400 answer's BatchError (``values`` of ``{"key", "value"}``);
    run-time errors are an AutoScaleRun's ``error`` (``values`` of ``{"name", "value"}``).
    """

    def __init__(self, code: str, message: str, values: Sequence[Dict[str, str]] = ()):
        super().__init__("%s: %s %s" % (code, message, " ".join(v["value"] for v in values)))
        self.code = code
        self.message = message
        self.values: List[Dict[str, str]] = [dict(v) for v in values]

    @property
    def detail(self) -> str:
        """The first value's text, e.g. ``Line 9, Col 43: Insufficient data ...``."""
        return self.values[0]["value"] if self.values else ""


Pos = Tuple[int, int]


def where(pos: Pos, text: str) -> str:
    return "Line %d, Col %d: %s" % (pos[0], pos[1], text)


def syntax_error(pos: Pos, text: str) -> FormulaError:
    return FormulaError(*SYNTAX_ERROR, values=[{"key": "Message", "value": where(pos, text)}])


# --- tokens -------------------------------------------------------------------------------

class Token(NamedTuple):
    kind: str  # "number", "string", "name", "op" or "end"
    text: str
    pos: Pos


_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n\f\v]+)|(?P<line_comment>//[^\n]*)|(?P<block_comment>/\*.*?\*/)"
    r"|(?P<open_comment>/\*)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)"
    r'|(?P<string>"[^"\n]*")|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/!<>=(){},;.?:])',
    re.DOTALL,
)


def tokenize(text: str) -> Iterator[Token]:
    """Yield the tokens of ``text``, skipping white space and comments."""
    index, line, line_start = 0, 1, 0
    while index < len(text):
        match = _TOKEN.match(text, index)
        pos = (line, index - line_start + 1)
        if match is None:
            raise syntax_error(pos, _bad_start(text[index:]))
        kind = match.lastgroup or ""
        if kind == "open_comment":
            raise syntax_error(pos, "Unterminated comment")
        if kind in ("number", "name", "string", "op"):
            yield Token(kind, match.group(), pos)
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rindex("\n") + 1
        index = match.end()
    yield Token("end", "", (line, index - line_start + 1))


def _bad_start(rest: str) -> str:
    if rest.startswith('"'):
        return "Unterminated string"
    return "Invalid character '%s'" % rest[0]


# --- the tree -----------------------------------------------------------------------------

class Number(NamedTuple):
    value: float
    pos: Pos


class String(NamedTuple):
    value: str
    pos: Pos


class Name(NamedTuple):
    name: str
    pos: Pos


class Vector(NamedTuple):
    items: Tuple[object, ...]
    pos: Pos


class Unary(NamedTuple):
    op: str
    operand: object
    pos: Pos


class Binary(NamedTuple):  # arithmetic, comparisons, && and ||
    op: str
    left: object
    right: object
    pos: Pos


class Ternary(NamedTuple):
    test: object
    then: object
    other: object
    pos: Pos


class Call(NamedTuple):  # pos: the "(" of the call
    function: str
    args: Tuple[object, ...]
    pos: Pos


class Method(NamedTuple):  # $Variable.Method(args); pos: the "(" of the call
    variable: str
    method: str
    args: Tuple[object, ...]
    pos: Pos


class Member(NamedTuple):  # timestamp.hour
    target: object
    member: str
    pos: Pos


class Statement(NamedTuple):
    target: Optional[str]  # None: a bare expression
    expr: object
    pos: Pos


# --- the parser ---------------------------------------------------------------------------

_PRECEDENCE: Dict[str, int] = {  # binary operators, loosest first
    "||": 0, "&&": 1, "==": 2, "!=": 2, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4, "*": 5, "/": 5,
}
_READ_ONLY = frozenset(SAMPLED + PLAIN + DEALLOCATION_OPTIONS + tuple(TIME_INTERVALS))


def parse_statements(text: str) -> List[Statement]:
    """Parse a formula into statements, raising FormulaError as Azure's 400 would."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(*TOO_LONG, values=[{"key": "Message", "value": (
            "The formula is %d characters long; the limit is %d" % (len(text), MAX_LENGTH))}])
    statements = _Parser(list(tokenize(text))).formula()
    if len(statements) > MAX_STATEMENTS:
        raise FormulaError(*TOO_LONG, values=[{"key": "Message", "value": (
            "The formula has %d statements; the limit is %d" % (len(statements), MAX_STATEMENTS))}])
    return statements


class _Parser:
    def __init__(self, tokens: List[Token]):
        self.tokens = tokens
        self.index = 0
        self.nesting = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def at(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def expect(self, op: str) -> Token:
        if not self.at(op):
            raise self.unexpected("'%s'" % op)
        return self.take()

    def unexpected(self, wanted: str) -> FormulaError:
        token = self.token
        found = "the end of the formula" if token.kind == "end" else "'%s'" % token.text
        return syntax_error(token.pos, "Expected %s but found %s" % (wanted, found))

    def formula(self) -> List[Statement]:
        statements = []
        while self.token.kind != "end":
            if self.at(";"):  # an empty statement
                self.take()
                continue
            statements.append(self.statement())
            if self.token.kind != "end":
                self.expect(";")
        return statements

    def statement(self) -> Statement:
        token = self.token
        following = self.tokens[self.index + 1]
        if token.kind == "name" and following.kind == "op" and following.text == "=":
            if token.text in _READ_ONLY:
                raise syntax_error(token.pos, "%s is read-only and cannot be assigned" % token.text)
            self.index += 2
            statement = Statement(token.text, self.expression(), token.pos)
        else:
            statement = Statement(None, self.expression(), token.pos)
        if _depth(statement.expr) > MAX_DEPTH:
            raise syntax_error(token.pos, "The statement is deeper than %d levels" % MAX_DEPTH)
        return statement

    def nested(self, token: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise syntax_error(
                token.pos, "The expression nests deeper than %d levels" % MAX_NESTING)

    def expression(self) -> object:
        self.nested(self.token)
        test = self.binary(0)
        if self.at("?"):
            pos = self.take().pos
            then = self.expression()
            self.expect(":")
            test = Ternary(test, then, self.expression(), pos)
        self.nesting -= 1
        return test

    def binary(self, loosest: int) -> object:
        """Precedence climbing: operators of one level associate to the left."""
        left = self.unary()
        while self.token.kind == "op" and _PRECEDENCE.get(self.token.text, -1) >= loosest:
            token = self.take()
            left = Binary(token.text, left, self.binary(_PRECEDENCE[token.text] + 1), token.pos)
        return left

    def unary(self) -> object:
        if not self.at("-", "!"):
            return self.postfix(self.primary())
        token = self.take()
        self.nested(token)
        node = Unary(token.text, self.unary(), token.pos)
        self.nesting -= 1
        return node

    def postfix(self, node: object) -> object:
        while self.at("."):
            self.take()
            name = self.take()
            if name.kind != "name" or name.text.startswith("$"):
                self.index -= 1
                raise self.unexpected("a member or method name")
            if self.at("("):
                node = self.method(node, name)
            else:
                node = Member(node, name.text, name.pos)
        return node

    def method(self, node: object, name: Token) -> Method:
        variable = node.name if isinstance(node, Name) else ""
        if variable not in SAMPLED + PLAIN:
            raise syntax_error(
                name.pos, "%s is a method of the service-defined variables" % name.text)
        if name.text not in METHOD_ARITY:
            raise syntax_error(name.pos, "Unknown method %s" % name.text)
        pos, args = self.arguments()
        _check_arity(name.text, METHOD_ARITY[name.text], args, pos)
        return Method(variable, name.text, args, pos)

    def primary(self) -> object:
        token = self.token
        if token.kind == "number":
            self.take()
            return Number(float(token.text), token.pos)
        if token.kind == "string":
            self.take()
            return String(token.text[1:-1], token.pos)
        if token.kind == "name":
            self.take()
            return self.call(token) if self.at("(") else Name(token.text, token.pos)
        if self.at("("):
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        if self.at("{"):
            return self.vector()
        raise self.unexpected("an expression")

    def call(self, name: Token) -> Call:
        if name.text not in FUNCTION_ARITY:
            raise syntax_error(name.pos, "Unknown function %s" % name.text)
        pos, args = self.arguments()
        _check_arity(name.text, FUNCTION_ARITY[name.text], args, pos)
        return Call(name.text, args, pos)

    def arguments(self) -> Tuple[Pos, Tuple[object, ...]]:
        pos = self.expect("(").pos
        return pos, self.items(")")

    def vector(self) -> Vector:
        pos = self.expect("{").pos
        return Vector(self.items("}"), pos)

    def items(self, close: str) -> Tuple[object, ...]:
        items: List[object] = []
        while not self.at(close):
            if items:
                self.expect(",")
            items.append(self.expression())
        self.take()
        return tuple(items)


def _depth(root: object) -> int:
    """How deep a tree is, walked without recursion (it may be deeper than Python allows)."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for field in node:  # type: ignore[attr-defined]
            # A field is a node, a tuple of nodes (arguments, items) or a plain value.
            children = (field,) if _is_node(field) else field if isinstance(field, tuple) else ()
            stack.extend((child, depth + 1) for child in children if _is_node(child))
    return deepest


def _is_node(field: object) -> bool:
    return hasattr(field, "_fields")


def _check_arity(name: str, arity: Tuple[int, Optional[int]], args: tuple, pos: Pos) -> None:
    low, high = arity
    if len(args) < low or (high is not None and len(args) > high):
        wanted = str(low) if low == high else "%d to %d" % arity if high else "at least %d" % low
        plural = "" if wanted in ("1", "at least 1") else "s"
        raise syntax_error(
            pos, "%s takes %s argument%s, not %d" % (name, wanted, plural, len(args)))
