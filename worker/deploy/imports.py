"""What the project's modules import and define, and whether a node will have what they import.

Every import statement of every packaged module (at the top, in functions, in classes) is
read with ``ast`` and resolved against the standard library of the nodes' Python
(:mod:`worker.deploy.stdlib`), the project's own modules, and the modules of the wheels the
package carries for its lock (the worker's pins, the worker itself, what the project's
requirements add), read from each wheel's ``RECORD``. Relative imports are the project's
own. Not checked, because the code itself says they may be missing: imports under
``if TYPE_CHECKING:``, in a branch that a ``sys.version_info`` test rules out for the nodes'
Python, and in a ``try`` whose ``except`` catches ImportError; nor the modules listed as
optional (``[package] optional_imports`` in batch.toml, ``[tool.batch-worker]
optional-imports`` in pyproject.toml).

A handler is a function at a module's top level with a parameter named ``ctx``: the
package lists them, and warns about a module at the project's root that has none (a local
script, such as a data generator, packaged as if it were code for the nodes).
"""

from __future__ import annotations

import ast
import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set, Tuple

from .errors import MissingImportError
from .stdlib import stdlib_modules, stdlib_versions


@dataclass(frozen=True)
class Import:
    """One imported module (absolute, dotted), where, and whether the code allows it to be
    missing (a ``try`` ... ``except ImportError``)."""

    module: str
    file: str
    line: int
    guarded: bool


@dataclass(frozen=True)
class ModuleScan:
    """What one module of the project imports and which handlers it defines."""

    file: str  # its path in the project (posix)
    imports: Tuple[Import, ...]
    handlers: Tuple[str, ...]
    parsed: bool = True  # False: the builder's Python could not parse it (not checked)

    @property
    def at_root(self) -> bool:
        return "/" not in self.file and self.file != "__init__.py"


class ModuleIndex:
    """Importable module names, from file paths as a wheel or a project lays them out."""

    def __init__(self) -> None:
        self.modules: Set[str] = set()  # modules and regular packages
        self.folders: Set[str] = set()  # every folder that holds one (namespace packages)

    def add_file(self, path: str) -> None:
        """``pkg/sub/mod.py``, ``pkg/__init__.py``, ``pkg/_ext.cpython-38-x86_64-linux-gnu.so``
        or ``name-1.0.data/purelib/pkg/mod.py``; anything else is not a module."""
        parts = path.split("/")
        if parts[0].endswith(".data"):  # a wheel's files installed into site-packages
            parts = parts[2:] if len(parts) > 2 and parts[1] in ("purelib", "platlib") else []
        if not parts or parts[0].endswith(".dist-info"):
            return
        name, folders = parts[-1], parts[:-1]
        stem = name[:-3] if name.endswith(".py") else (
            name.split(".", 1)[0] if name.endswith((".so", ".pyd")) else "")
        if not stem.isidentifier() or not all(f.isidentifier() for f in folders):
            return
        self.modules.add(".".join(folders if stem == "__init__" else folders + [stem]))
        self.folders.update(".".join(folders[:i]) for i in range(1, len(folders) + 1))
        self.modules.discard("")

    def provides(self, module: str) -> bool:
        """Whether ``import module`` (or ``from module import name``) finds it: the module or
        a package above it (the rest may be attributes or generated submodules), or a
        namespace package imported as such."""
        parts = module.split(".")
        if any(".".join(parts[:i]) in self.modules for i in range(len(parts), 0, -1)):
            return True
        return module in self.folders


def wheel_index(wheels: Iterable[Path]) -> ModuleIndex:
    """The modules the ``wheels`` install, from each one's RECORD."""
    index = ModuleIndex()
    for wheel in wheels:
        with zipfile.ZipFile(str(wheel)) as archive:
            records = [n for n in archive.namelist()
                       if n.endswith(".dist-info/RECORD") and n.count("/") == 1]
            for record in records:
                with archive.open(record) as raw:
                    for row in csv.reader(io.TextIOWrapper(raw, encoding="utf-8")):
                        if row:
                            index.add_file(row[0])
    return index


def project_index(files: Iterable[str]) -> ModuleIndex:
    """The project's own modules, from its packaged files (paths relative to its root)."""
    index = ModuleIndex()
    for rel in files:
        index.add_file(rel)
    return index


def scan_module(path: Path, rel: str, python: str) -> ModuleScan:
    """Read one module's imports and handlers, for the nodes' CPython ``python``."""
    try:
        tree = ast.parse(path.read_bytes(), filename=rel)
    except (SyntaxError, ValueError):
        return ModuleScan(rel, (), (), parsed=False)
    visitor = _ImportVisitor(rel, tuple(int(p) for p in python.split(".")) + (99,))
    visitor.visit(tree)
    return ModuleScan(rel, tuple(visitor.imports), _handlers(tree))


def _handlers(tree: ast.Module) -> Tuple[str, ...]:
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            names = [a.arg for a in args.args + args.kwonlyargs + getattr(args, "posonlyargs", [])]
            if "ctx" in names:
                found.append(node.name)
    return tuple(sorted(found))


class _ImportVisitor(ast.NodeVisitor):
    """Collects absolute imports, skipping what the code itself marks as optional."""

    def __init__(self, rel: str, target: Tuple[int, ...]) -> None:
        self.rel = rel
        self.target = target
        self.imports: List[Import] = []
        self._guarded = 0

    def _add(self, module: str, node: ast.stmt) -> None:
        self.imports.append(Import(module, self.rel, node.lineno, self._guarded > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return  # relative: the project's own
        for alias in node.names:  # each name a submodule or an attribute of the module
            self._add(node.module if alias.name == "*" else node.module + "." + alias.name,
                      node)

    def visit_Try(self, node: ast.Try) -> None:
        guarded = any(_catches_import_error(h) for h in node.handlers)
        self._guarded += guarded
        for statement in node.body:
            self.visit(statement)
        self._guarded -= guarded
        for part in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(part)

    visit_TryStar = visit_Try  # except* (3.11+)

    def visit_If(self, node: ast.If) -> None:
        taken = False if _is_type_checking(node.test) else _version_test(node.test,
                                                                         self.target)
        for statement in (node.body if taken is not False else []) + (
                node.orelse if taken is not True else []):
            self.visit(statement)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    if caught is None:
        return True
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(_name(n) in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")
               for n in names)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_type_checking(test: ast.expr) -> bool:
    return _name(test) == "TYPE_CHECKING"


def _version_test(test: ast.expr, target: Tuple[int, ...]) -> Optional[bool]:
    """The value of ``sys.version_info OP (3, 11)`` (or ``sys.version_info[:2] ...``) on the
    nodes' Python; None for any other test."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    left = test.left.value if isinstance(test.left, ast.Subscript) else test.left
    if not (isinstance(left, ast.Attribute) and left.attr == "version_info"
            and _name(left.value) == "sys"):
        return None
    try:
        value = ast.literal_eval(test.comparators[0])
    except ValueError:
        return None
    if not (isinstance(value, tuple) and value and all(isinstance(v, int) for v in value)):
        return None
    ours = target[:len(value)]
    return {ast.Lt: ours < value, ast.LtE: ours <= value, ast.Gt: ours > value,
            ast.GtE: ours >= value, ast.Eq: ours == value, ast.NotEq: ours != value,
            }.get(type(test.ops[0]))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Providers:
    """Where a node finds modules: its Python's standard library, the project, the wheels."""

    python: str
    project: ModuleIndex
    wheels: ModuleIndex

    def provide(self, module: str) -> bool:
        return (module.split(".")[0] in stdlib_modules(self.python)
                or self.project.provides(module) or self.wheels.provides(module))


def check_imports(scans: Sequence[ModuleScan], providers: Providers, optional: Sequence[str],
                  requirements: str) -> int:
    """Raise MissingImportError for the first import nothing provides (naming the others);
    the number of imports checked. ``requirements``: the file that declares them."""
    checked, missing = 0, []
    for scan in scans:
        for found in scan.imports:
            if found.guarded or _listed(found.module, optional):
                continue
            checked += 1
            if not providers.provide(found.module):
                missing.append((found, scan))
    if missing:
        raise MissingImportError(_missing_message(missing, providers.python, requirements))
    return checked


def _listed(module: str, optional: Sequence[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in optional)


def _missing_message(missing: List[Tuple[Import, ModuleScan]], python: str,
                     requirements: str) -> str:
    first, scan = missing[0]
    fix = ("add the distribution that provides %s to %s, pinned (or, if the code runs "
           "without it, list it in optional_imports of batch.toml's [package])"
           % (first.module, requirements))
    elsewhere = stdlib_versions(first.module.split(".")[0])
    if elsewhere:
        fix = ("%s is in the standard library of Python %s only: package for one of those "
               "(--python), or import it under a sys.version_info test"
               % (first.module.split(".")[0], ", ".join(elsewhere)))
    if scan.at_root and not scan.handlers:
        fix = ("%s defines no handler: if it is a local script, list it in .workerignore; "
               "else %s" % (first.file, fix))
    more = ""
    if len(missing) > 1:
        shown = ", ".join("%s at %s:%d" % (i.module, i.file, i.line) for i, _ in missing[1:4])
        more = " (and %d more: %s%s)" % (len(missing) - 1, shown,
                                         ", ..." if len(missing) > 4 else "")
    return ("%s:%d imports %s, which nothing in the package provides (not the standard "
            "library of Python %s, the project's modules, the worker's lock or %s)%s; %s"
            % (first.file, first.line, first.module, python, requirements, more, fix))
