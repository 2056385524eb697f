"""The OData query options Batch's list operations take: ``$filter`` (comparisons of
properties, ``and``/``or``/``not``, parentheses, ``startswith``), ``$select`` (top-level
properties) and ``maxresults`` with ``odata.nextLink`` pages.

A filter is evaluated on the answer's own JSON: a property path such as
``executionInfo/result`` reads ``{"executionInfo": {"result": ...}}``. Each list filters on
the properties and with the operators Batch's reference lists for it ("OData filters in
Azure Batch", :data:`FILTERABLE`): ``executionInfo/exitCode`` of tasks, but not their
``executionInfo/requeueCount`` or ``displayName``. A filter that does not parse, or names a
property or an operator the list does not filter on, is Batch's 400
``InvalidQueryParameterValue`` naming ``$filter``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import query_error

Predicate = Callable[[Dict[str, Any]], bool]
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|"
                    r"(?P<punct>[(),])|(?P<word>[A-Za-z_$][A-Za-z0-9_/.$]*))")
_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
            "gt": lambda a, b: a is not None and b is not None and a > b,
            "ge": lambda a, b: a is not None and b is not None and a >= b,
            "lt": lambda a, b: a is not None and b is not None and a < b,
            "le": lambda a, b: a is not None and b is not None and a <= b}
MAX_RESULTS = 1000

_ALL, _TEXT = "eq ne ge gt le lt", "startswith eq ne ge gt le lt"
#: What each list filters on: a property's path and its operators (``startswith`` too).
FILTERABLE: Dict[str, Dict[str, str]] = {
    "tasks": {"id": _TEXT, "state": "eq", "stateTransitionTime": _ALL, "creationTime": _ALL,
              "lastModified": _ALL, "executionInfo/startTime": _ALL,
              "executionInfo/endTime": _ALL, "executionInfo/exitCode": _ALL,
              "executionInfo/result": "eq ne"},
    "jobs": {"id": _TEXT, "state": "eq", "stateTransitionTime": _ALL, "creationTime": _ALL,
             "lastModified": _ALL, "executionInfo/startTime": _ALL,
             "executionInfo/endTime": _ALL, "executionInfo/poolId": _TEXT},
    "pools": {"id": _TEXT, "state": "eq", "stateTransitionTime": _ALL,
              "allocationState": "eq", "allocationStateTransitionTime": _ALL,
              "creationTime": _ALL, "enableAutoScale": "eq ne", "lastModified": _ALL,
              "vmSize": "eq ne", "enableInterNodeCommunication": "eq ne"},
    "nodes": {"state": "eq", "stateTransitionTime": _ALL, "lastBootTime": _ALL,
              "allocationTime": _ALL, "startTaskInfo/state": "eq",
              "startTaskInfo/result": "eq ne", "startTaskInfo/exitCode": _ALL,
              "startTaskInfo/startTime": _ALL, "startTaskInfo/endTime": _ALL},
    "files": {"name": "startswith"},
}


def parse_filter(text: Optional[str], kind: Optional[str] = None) -> Optional[Predicate]:
    """A predicate on an answer's JSON, or None for no filter; ``kind`` (``tasks``, ...)
    limits it to what that list filters on."""
    if not text or not text.strip():
        return None
    parser = _Parser(_tokens(text), text, FILTERABLE.get(kind or ""))
    predicate = parser.expression()
    if parser.position != len(parser.tokens):
        raise _bad(text, "unexpected %r" % parser.tokens[parser.position][1])
    return predicate


def select(document: Dict[str, Any], names: Optional[str]) -> Dict[str, Any]:
    """The document with only the ``$select``ed top-level properties (and its odata ones)."""
    if not names:
        return document
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    return {k: v for k, v in document.items() if k in wanted or k.startswith("odata.")}


def max_results(text: Optional[str]) -> int:
    if text is None:
        return MAX_RESULTS
    if not text.isdigit() or not 1 <= int(text) <= MAX_RESULTS:
        raise query_error("InvalidQueryParameterValue", "maxresults", text,
                          "a whole number from 1 to %d" % MAX_RESULTS)
    return int(text)


def _tokens(text: str) -> List[Tuple[str, str]]:
    out, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise _bad(text, "cannot read %r" % text[position:position + 20])
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    """expression := term (or term)*; term := factor (and factor)*;
    factor := not factor | ( expression ) | startswith(path, value) | path op value."""

    def __init__(self, tokens: Sequence[Tuple[str, str]], text: str,
                 allowed: Optional[Dict[str, str]] = None) -> None:
        self.tokens, self.text, self.position = list(tokens), text, 0
        self.allowed = allowed  # property -> its operators; None: anything

    def check(self, path: List[str], operator: str) -> None:
        """Refuse what the list does not filter on, as Batch does."""
        if self.allowed is None:
            return
        name = "/".join(path)
        operators = {k.lower(): v.split() for k, v in self.allowed.items()}.get(name.lower())
        if operators is None:
            raise _bad(self.text, "the property %s cannot be used in a filter of this list "
                       "(it filters on %s)" % (name, ", ".join(self.allowed)))
        if operator not in operators:
            raise _bad(self.text, "the property %s allows only %s" % (name,
                                                                     ", ".join(operators)))

    def peek(self) -> Tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("", "")

    def take(self, value: Optional[str] = None) -> Tuple[str, str]:
        token = self.peek()
        if not token[0] or (value is not None and token[1].lower() != value):
            raise _bad(self.text, "expected %s" % (value or "more"))
        self.position += 1
        return token

    def expression(self) -> Predicate:
        parts = [self.term()]
        while self.peek()[1].lower() == "or":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda d: any(p(d) for p in parts))

    def term(self) -> Predicate:
        parts = [self.factor()]
        while self.peek()[1].lower() == "and":
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda d: all(p(d) for p in parts))

    def factor(self) -> Predicate:
        kind, value = self.peek()
        if value.lower() == "not":
            self.take()
            inner = self.factor()
            return lambda d: not inner(d)
        if value == "(":
            self.take()
            inner = self.expression()
            self.take(")")
            return inner
        if kind == "word" and value.lower() == "startswith":
            return self.startswith()
        return self.comparison()

    def startswith(self) -> Predicate:
        self.take()
        self.take("(")
        path = self.path()
        self.check(path, "startswith")
        self.take(",")
        prefix = self.literal()
        self.take(")")
        return lambda d: isinstance(_get(d, path), str) and _get(d, path).startswith(prefix)

    def comparison(self) -> Predicate:
        path = self.path()
        operator = self.take()[1].lower()
        if operator not in _COMPARE:
            raise _bad(self.text, "%r is not a comparison (eq, ne, gt, ge, lt, le)" % operator)
        self.check(path, operator)
        literal = self.literal()
        compare = _COMPARE[operator]
        return lambda d: compare(_normal(_get(d, path)), _normal(literal))

    def path(self) -> List[str]:
        kind, value = self.take()
        if kind != "word":
            raise _bad(self.text, "expected a property, got %r" % value)
        return value.split("/")

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "word" and value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise _bad(self.text, "expected a value, got %r" % value)


def _get(document: Any, path: List[str]) -> Any:
    for name in path:
        if not isinstance(document, dict):
            return None
        document = document.get(name)
    return document


def _normal(value: Any) -> Any:
    """Enumerations compare without regard to case (``state eq 'Active'``)."""
    return value.lower() if isinstance(value, str) else value


def _bad(text: str, reason: str) -> Exception:
    return query_error("InvalidQueryParameterValue", "$filter", text, reason)
