"""The deploy spec: a small TOML file in the user's project (``batch.toml``) and ``--set``
overrides, read into one validated mapping that ``spec pool|job|tasks`` turn into documents.

Sections and keys (docs/deploying.md, "The spec file and `spec`", shows an example)::

    [package]  app, version, python               (default: the --package zip's manifest),
               optional_imports                   (read by ``package``: modules the code
                                                   runs without)
    [pool]     id, account, vm_size, nodes, spot_nodes, autoscale, autoscale_minutes,
               task_slots, fill, identity, client_id, start_task_retries, environment,
               image, node_agent                  (default: those of the package's Python)
               account_url, subscription, resource_group (where ``deploy`` finds the account)
    [job]      id, lake_url, vault_url, environment
    [tasks]    command, items, timeout, grace, margin, retries, slots, first_id,
               dependency_action, environment
    [merge]    id, command, timeout, grace, margin, retries, slots, environment

Every key is checked against its type when the file is read; a key a document needs is
checked when that document is made, so ``spec pool`` does not ask for a [tasks] section.
A bad file or option is a one-line :class:`SpecError` (exit 2) naming the key and the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from .errors import SpecError

DEFAULT_FILE = "batch.toml"

_TASK_KEYS = {
    "command": list, "timeout": float, "grace": float, "margin": float, "retries": int,
    "slots": int, "environment": dict,
}
SCHEMA: Dict[str, Dict[str, Any]] = {
    "package": {"app": str, "version": str, "python": str, "optional_imports": list},
    "pool": {
        "id": str, "account": str, "vm_size": str, "nodes": int, "spot_nodes": int,
        "autoscale": str, "autoscale_minutes": int, "task_slots": int,
        "fill": ("pack", "spread"), "identity": str, "client_id": str,
        "start_task_retries": int, "environment": dict, "image": dict, "node_agent": str,
        "account_url": str, "subscription": str, "resource_group": str,
    },
    "job": {"id": str, "lake_url": str, "vault_url": str, "environment": dict},
    "tasks": dict(_TASK_KEYS, items=dict, first_id=int,
                  dependency_action=("block", "satisfy")),
    "merge": dict(_TASK_KEYS, id=str),
}
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "pool": {"vm_size": "Standard_D2a_v4", "nodes": 1, "spot_nodes": 0,
             "autoscale_minutes": 15, "task_slots": 1, "fill": "pack",
             "start_task_retries": 1, "environment": {}},
    "job": {"environment": {}},
    "tasks": {"grace": 10.0, "margin": 60.0, "retries": 2, "slots": 1, "first_id": 1,
              "dependency_action": "block", "environment": {}},
    "merge": {"id": "merge", "grace": 10.0, "margin": 60.0, "retries": 2, "slots": 1,
              "environment": {}},
}
#: What each required key is, for the error that asks for it.
HINTS = {
    "package.app": "the application id (or pass --package app.zip)",
    "package.version": "the package version (or pass --package app.zip)",
    "package.python": "the Python the package is built for (or pass --package app.zip)",
    "pool.id": "the pool's id", "pool.account": "the Batch account's name",
    "pool.identity": "the ARM id of the pool's user-assigned managed identity",
    "pool.client_id": "that identity's client id",
    "job.id": "the job's id",
    "tasks.command": "the worker arguments of each task, e.g. [\"run\", "
                     "\"handlers.daily:partition\", \"--param\", \"path={item}\"]",
    "tasks.items": "the fan-out's items: {lake = \"raw/sales/date=*/\"}, "
                   "{range = [\"2024-01-01\", \"2024-01-31\"]} or {list = [\"a\", \"b\"]}",
    "merge.command": "the merge task's worker arguments",
}


class Spec:
    """The validated spec: ``spec.get("pool", "id")``, ``spec.require("job", "id")``."""

    def __init__(self, data: Dict[str, Dict[str, Any]], source: str) -> None:
        self.data = data
        self.source = source

    def has(self, section: str) -> bool:
        return section in self.data

    def get(self, section: str, key: str, default: Any = None) -> Any:
        value = self.data.get(section, {}).get(key)
        if value is None:
            value = DEFAULTS.get(section, {}).get(key, default)
        return value

    def require(self, section: str, key: str) -> Any:
        value = self.get(section, key)
        if value is None or value == "" or value == []:
            raise SpecError("%s has no [%s] %s (%s): add it, or pass --set %s.%s=..."
                            % (self.source, section, key, HINTS.get(section + "." + key, key),
                               section, key))
        return value


def load_spec(path: Optional[Path], overrides: Iterable[str] = (),
              package: Optional[Mapping[str, str]] = None) -> Spec:
    """Read the spec file (``None``: options only), apply the ``--set KEY=VALUE``
    overrides, and take the package's app id and version from ``package`` (a manifest)
    where the spec does not name them; its Python is the manifest's."""
    data: Dict[str, Dict[str, Any]] = {}
    source = "the spec options"
    if path is not None:
        data = _read(path)
        source = str(path)
    for text in overrides:
        section, key, value = _override(text)
        data.setdefault(section, {})[key] = value
    if package:
        data.setdefault("package", {}).setdefault("app", package["name"])
        data["package"].setdefault("version", package["version"])
        _python_of(data["package"], package, source)
    return Spec(data, source)


def _python_of(section: Dict[str, Any], manifest: Mapping[str, str], source: str) -> None:
    """The package's Python is a fact of the package: a [package] python that says
    otherwise is a mistake, not an override."""
    built = manifest.get("python")
    if not built:
        return
    stated = section.setdefault("python", built)
    if stated != built:
        raise SpecError("%s says [package] python = %r, but the package was built for Python "
                        "%s: remove [package] python, or build the package with --python %s"
                        % (source, stated, built, stated))


def _read(path: Path) -> Dict[str, Dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            raw = _toml().load(handle)
    except FileNotFoundError:
        raise SpecError("spec file %s does not exist: write one (docs/deploying.md) or "
                        "name it with --spec FILE" % path) from None
    except OSError as e:
        raise SpecError("cannot read spec file %s: %s" % (path, e.strerror or e)) from None
    except ValueError as e:  # tomllib.TOMLDecodeError
        raise SpecError("spec file %s is not valid TOML: %s" % (path, e)) from None
    data: Dict[str, Dict[str, Any]] = {}
    for section, table in raw.items():
        if section not in SCHEMA or not isinstance(table, dict):
            raise SpecError("%s: unknown section [%s]; the sections are %s"
                            % (path, section, ", ".join("[%s]" % s for s in SCHEMA)))
        data[section] = {key: _checked(section, key, value, str(path))
                         for key, value in table.items()}
    return data


def _override(text: str) -> Tuple[str, str, Any]:
    """``--set section.key=value``: the value is TOML (numbers, lists, inline tables) for
    keys that are not strings, and taken as it is for string keys."""
    name, sep, value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot:
        raise SpecError("--set %r: expected SECTION.KEY=VALUE, e.g. --set job.id=sales-2024-02"
                        % text)
    where = "--set %s" % name.strip()
    kind = SCHEMA.get(section, {}).get(key)
    if kind is str or isinstance(kind, tuple):
        return section, key, _checked(section, key, value, where)
    try:
        parsed = _toml().loads("value = " + value)["value"]
    except ValueError:
        parsed = value
    return section, key, _checked(section, key, parsed, where)


def _checked(section: str, key: str, value: Any, where: str) -> Any:
    keys = SCHEMA.get(section)
    if keys is None:
        raise SpecError("%s: unknown section %r; the sections are %s"
                        % (where, section, ", ".join(SCHEMA)))
    kind = keys.get(key)
    if kind is None:
        raise SpecError("%s: unknown key %r in [%s]; the keys are %s"
                        % (where, key, section, ", ".join(sorted(keys))))
    if isinstance(kind, tuple):
        if value not in kind:
            raise SpecError("%s: [%s] %s must be one of %s, got %r"
                            % (where, section, key, ", ".join(kind), value))
        return value
    return _typed(kind, value, "%s: [%s] %s" % (where, section, key))


def _typed(kind: type, value: Any, what: str) -> Any:
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise SpecError("%s must not be negative, got %r" % (what, value))
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise SpecError("%s must not be negative, got %r" % (what, value))
        return value
    if kind is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if kind is dict and isinstance(value, dict):
        return dict(value)
    if kind is str and isinstance(value, str):
        return value
    raise SpecError("%s must be %s, got %r" % (what, _KIND_NAMES[kind], value))


_KIND_NAMES = {str: "a string", int: "a whole number", float: "a number of seconds",
               list: "a list of strings", dict: "a table"}


def environment(spec: Spec, section: str) -> List[Tuple[str, str]]:
    """A section's ``environment`` table as sorted (name, value) pairs of strings."""
    table = spec.get(section, "environment") or {}
    pairs = []
    for name, value in sorted(table.items()):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SpecError("%s: [%s] environment.%s must be a string or a number, got %r"
                            % (spec.source, section, name, value))
        pairs.append((name, str(value)))
    return pairs


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # the deploy extra
    return tomllib
