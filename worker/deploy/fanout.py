"""A fan-out's items, and the worker arguments of one task per item.

Items come from one of three sources, resolved when the spec is generated:

- ``{lake = "raw/sales/date=*/"}``: a listing of the lake at ``WORKER_LAKE_URL`` with your
  own credential (``worker.lake``, as ``python -m worker lake ls`` does): a pattern ending in
  ``/`` gives folders, any other pattern files; sorted by path;
- ``{range = ["2024-01-01", "2024-01-31"], step = 1}``: dates (days, both ends included) or
  whole numbers;
- ``{list = ["eu", "us"]}``: the strings as they are.

A task's worker arguments are the ``command`` template with ``{item}`` (the item: a lake path
without its final ``/``, a date, a number or a string), ``{item_name}`` (its last path
component), ``{task_id}`` and ``{job_id}`` replaced, and, in the merge task's, ``{items_file}``
(the lake path of the file that lists the items). Other braces are left as they are (``exec``
has placeholders of its own, such as ``{input}``), and each template word stays one argument.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .errors import NoItemsError, SpecError

PLACEHOLDER = re.compile(r"\{(item|item_name|task_id|job_id|items_file)\}")
ITEM_PLACEHOLDERS = ("{item}", "{item_name}")
_SOURCES = ("lake", "range", "list")


def resolve_items(source: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None
                  ) -> List[str]:
    """The items of a source table (see the module's docstring); none is NoItemsError."""
    kinds = [k for k in _SOURCES if k in source]
    extra = sorted(set(source) - set(_SOURCES) - {"step"})
    if len(kinds) != 1 or extra or ("step" in source and kinds != ["range"]):
        raise SpecError("[tasks] items must have exactly one of lake, range or list (step "
                        "only with range), got %s" % _describe(source))
    kind = kinds[0]
    if kind == "lake":
        items = list_lake(_string(source["lake"], "items.lake"), environ)
    elif kind == "range":
        items = expand_range(source["range"], source.get("step", 1))
    else:
        items = [_string(v, "items.list") for v in _sequence(source["list"], "items.list")]
    if not items:
        raise NoItemsError("the fan-out's items %s gave no item%s: nothing to run; check the "
                           "source" % (_describe(source), _where(kind, environ)))
    return items


def expand_range(bounds: Any, step: Any = 1) -> List[str]:
    """``[start, end]`` of ISO dates (a day per item) or of whole numbers, end included."""
    pair = _sequence(bounds, "items.range")
    if len(pair) != 2 or not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise SpecError("[tasks] items.range must be [start, end] with a whole step >= 1, "
                        "got %r step %r" % (bounds, step))
    start, end = pair
    if all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        return [str(n) for n in range(start, end + 1, step)]
    first, last = _date(start), _date(end)
    days = (last - first).days
    return [(first + datetime.timedelta(days=n)).isoformat() for n in range(0, days + 1, step)]


def list_lake(pattern: str, environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Lake paths matching ``pattern`` under WORKER_LAKE_URL, listed with the caller's
    credential: folders for a pattern ending in ``/``, else files."""
    from ..config import Config
    from ..lake import Lake, open_store
    from ..lake.paths import glob_regex, split_glob

    config = Config.from_env(environ)
    if not config.lake_url:
        raise SpecError("[tasks] items.lake lists the lake, but WORKER_LAKE_URL is not set: "
                        "set it to the lake root the job reads")
    folders = pattern.endswith("/")
    folder, rest = split_glob(pattern.strip("/"))
    regex = glob_regex(rest)
    lake = Lake(open_store(config.lake_url, config=config), "spec",
                concurrency=config.transfer_concurrency)
    try:
        entries = lake.ls(folder, recursive="/" in rest or "**" in rest)
    except FileNotFoundError:
        entries = []
    finally:
        lake.close()
    start = len(folder) + 1 if folder else 0
    return sorted(e.path for e in entries
                  if e.is_dir == folders and regex.match(e.path[start:]))


def item_name(item: str) -> str:
    """The last path component of an item (the item itself when it has no ``/``)."""
    return item.rstrip("/").rsplit("/", 1)[-1]


def expand(template: Sequence[str], values: Dict[str, str]) -> List[str]:
    """The template's words with the placeholders of ``values`` replaced; others kept."""
    def one(match: "re.Match[str]") -> str:
        return values.get(match.group(1), match.group(0))

    return [PLACEHOLDER.sub(one, word) for word in template]


def check_template(template: Sequence[str], section: str, allowed: Sequence[str]) -> None:
    """Refuse a placeholder of ours that this template may not use, and a fan-out
    template that never names its item (every task would run the same command)."""
    for word in template:
        for match in PLACEHOLDER.finditer(word):
            if match.group(1) not in allowed:
                raise SpecError("[%s] command uses {%s}, which only %s; use %s"
                                % (section, match.group(1), _ONLY[match.group(1)],
                                   ", ".join("{%s}" % a for a in allowed)))
    if section == "tasks" and not any(p in w for w in template for p in ITEM_PLACEHOLDERS):
        raise SpecError("[tasks] command never uses {item} or {item_name}: every task of the "
                        "fan-out would run the same command")


_ONLY = {"item": "the fan-out's tasks have", "item_name": "the fan-out's tasks have",
         "items_file": "the merge task has", "task_id": "", "job_id": ""}


def _date(value: Any) -> datetime.date:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value  # TOML's bare dates
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise SpecError("[tasks] items.range: %r is not a date (YYYY-MM-DD) or a whole number"
                        % (value,)) from None


def _sequence(value: Any, what: str) -> List[Any]:
    if not isinstance(value, list):
        raise SpecError("[tasks] %s must be a list, got %r" % (what, value))
    return value


def _string(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError("[tasks] %s must hold strings, got %r" % (what, value))
    return str(value)


def _describe(source: Mapping[str, Any]) -> str:
    return "{%s}" % ", ".join("%s = %r" % (k, v) for k, v in source.items())


def _where(kind: str, environ: Optional[Mapping[str, str]]) -> str:
    if kind != "lake":
        return ""
    import os

    return " in %s" % (environ if environ is not None else os.environ).get("WORKER_LAKE_URL")
