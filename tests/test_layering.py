"""The house's walls, read from the source: the import graph of the ``worker`` package (every
import statement that runs, lazy ones in functions included; ``if TYPE_CHECKING:`` blocks
are annotations only) has no circle; ``legacy/`` is a library
that the context and the ``exec`` command use and that imports nothing of the runner or the
command line; the task path never imports the terminal commands, the deploy tools or the
emulators; the emulators never import the worker's own lake, secrets or identity code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "worker"


def _modules() -> Dict[str, Path]:
    found = {}
    templates = PACKAGE / "commands" / "templates"  # init's projects: files, not modules
    for path in sorted(PACKAGE.rglob("*.py")):
        if templates in path.parents:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _statements(tree: ast.AST):
    """Every node that runs: ``if TYPE_CHECKING:`` blocks (annotations only) left out."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            for other in node.orelse:
                yield other
                yield from _statements(other)
            continue
        yield node
        yield from _statements(node)


def _imported(module: str, path: Path) -> Set[str]:
    """The worker modules ``module`` imports when it runs. ``from PKG import NAME`` depends
    on PKG.NAME when that is a module (PKG itself is then only its parent), else on PKG."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            found.update(base + "." + a.name if base + "." + a.name in MODULES else base
                         for a in node.names)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imported(module, path) for module, path in MODULES.items()}


def _circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def _reaching(module_prefix: str, forbidden: tuple) -> List[str]:
    return sorted("%s -> %s" % (module, target)
                  for module, targets in GRAPH.items()
                  if module == module_prefix or module.startswith(module_prefix + ".")
                  for target in targets
                  if any(target == f or target.startswith(f + ".") for f in forbidden))


def test_the_graph_is_read_from_the_source():
    """What the checks below rely on: lazy imports and relative ones are edges."""
    assert "worker.legacy.process" in GRAPH["worker.context"]  # a lazy import in a method
    assert "worker.legacy.task" in GRAPH["worker.commands.exec"]
    assert "worker.runner" in GRAPH["worker.commands.exec"]
    assert {"worker.legacy.placeholders", "worker.legacy.staging"} <= GRAPH["worker.legacy.task"]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    # annotations only: worker.emulators.batch.jobs names the service's types for mypy
    assert "worker.emulators.batch.service" not in GRAPH["worker.emulators.batch.jobs"]
    assert "worker.deploy.localbatch.scheduler" in GRAPH["worker.emulators.batch.jobs"]


def test_no_import_circles():
    assert _circles(GRAPH) == []


def test_legacy_is_a_library_below_the_runner_and_the_commands():
    assert "worker.legacy.command" not in MODULES, "exec's command line is worker.commands.exec"
    assert _reaching("worker.legacy", ("worker.runner", "worker.cli", "worker.commands",
                                       "worker.deploy", "worker.testing")) == []


@pytest.mark.parametrize("module", [
    "worker.runner", "worker.context", "worker.handler", "worker.lake", "worker.secrets",
    "worker.vault", "worker.identity", "worker.db", "worker.legacy",
])
def test_the_task_path_never_imports_commands_deploy_tools_or_emulators(module):
    assert _reaching(module, ("worker.commands", "worker.deploy", "worker.emulators",
                              "worker.testing", "worker.cli")) == []


def test_the_emulators_never_import_the_workers_own_clients():
    assert _reaching("worker.emulators", ("worker.lake", "worker.secrets", "worker.vault",
                                          "worker.identity", "worker.context")) == []
