"""Placeholders in a legacy program's arguments: ``{input}``, ``{stem}``, ``{output_dir}``...

Each argument is expanded on its own and stays one argument (no shell, no word
splitting), so paths with spaces or non-ASCII names arrive whole. ``{inputs}`` (``--once``)
must be an argument of its own and becomes one argument per input. ``{{`` and ``}}`` are
literal braces; braces around anything but a placeholder name (``{a: 1}``) stay as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Sequence

from ..errors import ParameterError

PER_INPUT = ("input", "name", "stem", "ext", "input_dir", "output_dir")
ONCE = ("inputs", "input_dir", "output_dir")
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MANY = "inputs"


def for_input(local: Path, output_dir: Path) -> Dict[str, object]:
    """The values for one run per input."""
    return {"input": str(local), "name": local.name, "stem": local.stem, "ext": local.suffix,
            "input_dir": str(local.parent), "output_dir": str(output_dir)}


def for_all(locals_: Sequence[Path], output_dir: Path) -> Dict[str, object]:
    """The values for one run over every input (``--once``)."""
    common = os.path.commonpath([str(p.parent) for p in locals_]) if locals_ else ""
    return {"inputs": [str(p) for p in locals_], "input_dir": common,
            "output_dir": str(output_dir)}


def expand(template: Sequence[str], values: Dict[str, object]) -> List[str]:
    """The argv for one run: each placeholder replaced by its value."""
    argv: List[str] = []
    for arg in template:
        whole = _TOKEN.fullmatch(arg)
        if whole and whole.group(1) == _MANY and _MANY in values:
            argv.extend(values[_MANY])  # type: ignore[arg-type]
            continue
        argv.append(_expand_one(arg, values))
    return argv


def _expand_one(arg: str, values: Dict[str, object]) -> str:
    return _TOKEN.sub(lambda m: _value(m, values, arg), arg)


def check(template: Sequence[str], once: bool) -> None:
    """Refuse unknown placeholders before anything is staged (ParameterError, exit 2)."""
    names = ONCE if once else PER_INPUT
    expand(template, {name: ([] if name == _MANY else "") for name in names})


def uses(template: Sequence[str], name: str) -> bool:
    """True when a placeholder ``{name}`` appears in the template."""
    return any(m.group(1) == name for arg in template for m in _TOKEN.finditer(arg))


def _value(match: "re.Match[str]", values: Dict[str, object], arg: str) -> str:
    token = match.group(0)
    if token in ("{{", "}}"):
        return token[0]
    name = match.group(1)
    if name == _MANY and name in values:
        raise ParameterError(
            f"{{inputs}} must be an argument of its own (it becomes one argument per input), "
            f"not part of {arg!r}", code="params.placeholder")
    if name not in values:
        raise ParameterError(_unknown(name, values), code="params.placeholder")
    return str(values[name])


def _unknown(name: str, values: Dict[str, object]) -> str:
    if name == _MANY:
        return "{inputs} needs --once (one run for all inputs); use {input} for one run each"
    if name in PER_INPUT:
        return (f"{{{name}}} names one input; with --once use {{inputs}}, {{input_dir}} and "
                "{output_dir}")
    known = ", ".join("{" + n + "}" for n in values)
    return (f"unknown placeholder {{{name}}} in the program's arguments; use {known} "
            "(write {{ and }} for literal braces)")
