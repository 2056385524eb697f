"""Loading a user's handler from ``package.module:function`` or ``path/file.py:function``.

Loading goes in stages, and each stage fails with its own error code and message, so a
broken task says exactly what to fix: the spec, the import, the syntax, the name, whether
it is callable, and whether its signature takes the given parameters.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType

from .errors import HandlerLoadError, ParameterError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Any, Callable, Dict, List, Optional, Set

_SPEC_FORMS = "'package.module:function' or 'path/to/file.py:function'"
CONTEXT_NAMES = ("ctx", "context")


class Handler(collections.namedtuple(
        "Handler", "spec function context_param context_positional accepted required "
        "is_async")):
    """A loaded handler and how to call it: its ``spec``, the ``function``, the name of
    its context parameter (None: it takes none) and whether it is positional, the
    parameter names it ``accepted`` (None: it takes ``**kwargs``, so any) and ``required``,
    and whether it ``is_async``."""

    __slots__ = ()

    def call(self, ctx: Any, params: Dict[str, Any]) -> Any:
        """Call the function with the context in its place and the parameters by name."""
        if self.context_param is None:
            return self.function(**params)
        if self.context_positional:
            return self.function(ctx, **params)
        return self.function(**{self.context_param: ctx}, **params)

    def check_params(self, params: Dict[str, Any]) -> None:
        """Refuse parameters the signature cannot take, before anything runs."""
        names = set(params)
        unknown = sorted(names - self.accepted) if self.accepted is not None else []
        if unknown:
            raise ParameterError(
                f"handler {self.spec!r} does not accept parameter(s) {_names(unknown)}; "
                f"it accepts: {_names(sorted(self.accepted)) or 'no parameters'}",
                code="params.unknown",
            )
        missing = sorted(self.required - names)
        if missing:
            raise ParameterError(
                f"handler {self.spec!r} requires parameter(s) {_names(missing)}; "
                f"pass them with --param {missing[0]}=VALUE",
                code="params.missing",
            )


def load_handler(spec: str, params: Optional[Dict[str, Any]] = None) -> Handler:
    """Load and check the handler named by ``spec``; raise HandlerLoadError per stage."""
    target, attr_path = _split_spec(spec)
    module = _import_target(spec, target)
    function = _resolve(spec, module, attr_path)
    handler = _inspect(spec, function, set(params or {}))
    if params is not None:
        handler.check_params(params)
    return handler


def _dotted(name: str) -> bool:
    """``a.b.c`` of ASCII identifiers (str methods: a regex compiled at import costs every
    task's start-up)."""
    return all(part.isidentifier() and part.isascii() for part in name.split("."))


def _split_spec(spec: str):
    target, sep, attr_path = spec.rpartition(":")
    if not sep or not target or not _dotted(attr_path):
        raise HandlerLoadError(
            f"bad handler spec {spec!r}: expected {_SPEC_FORMS}", code="handler.bad_spec"
        )
    if not target.endswith(".py") and not _dotted(target):
        raise HandlerLoadError(
            f"bad handler spec {spec!r}: {target!r} is neither a module name nor a .py file; "
            f"expected {_SPEC_FORMS}",
            code="handler.bad_spec",
        )
    return target, attr_path


def _import_target(spec: str, target: str) -> ModuleType:
    try:
        if target.endswith(".py"):
            return _import_file(spec, Path(target))
        _put_first_on_path(os.getcwd())
        return importlib.import_module(target)
    except SyntaxError as e:
        where = f"{e.filename}, line {e.lineno}" if e.filename else f"line {e.lineno}"
        raise HandlerLoadError(
            f"syntax error in handler {spec!r} ({where}): {e.msg}; fix the code there",
            code="handler.syntax_error"
        ) from e
    except ModuleNotFoundError as e:
        if e.name and (target == e.name or target.startswith(e.name + ".")):
            raise HandlerLoadError(
                f"cannot import handler {spec!r}: no module named {e.name!r} "
                f"(run from the folder that contains it, or set PYTHONPATH)",
                code="handler.import_error",
            ) from e
        raise _import_failed(spec, e) from e
    except HandlerLoadError:
        raise
    except Exception as e:
        raise _import_failed(spec, e) from e


def _import_failed(spec: str, error: BaseException) -> HandlerLoadError:
    if isinstance(error, ModuleNotFoundError):
        fix = (f"install {error.name!r} where the task runs (add it to the project's "
               "requirements and rebuild the application package)")
    else:
        target = spec.rpartition(":")[0]
        run = f"python {target}" if target.endswith(".py") else f"python -c 'import {target}'"
        fix = f"the module raised while it was imported: fix that ({run} shows the traceback)"
    return HandlerLoadError(
        f"importing handler {spec!r} failed: {type(error).__name__}: {error}; {fix}",
        code="handler.import_error",
    )


def _import_file(spec: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise HandlerLoadError(
            f"cannot import handler {spec!r}: file {str(path)!r} does not exist; check the "
            "path (relative to the folder the task runs in)",
            code="handler.import_error",
        )
    import importlib.util  # only file specs need it

    path = path.resolve()
    _put_first_on_path(str(path.parent))  # so the file's sibling modules import
    name = f"_worker_handler_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _put_first_on_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _resolve(spec: str, module: ModuleType, attr_path: str) -> Callable[..., Any]:
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise HandlerLoadError(
                f"handler {spec!r} not found: {_module_label(module)} has no attribute "
                f"{part!r}{_suggestions(obj, part)}",
                code="handler.missing",
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise HandlerLoadError(
            f"handler {spec!r} is not callable: it is of type {type(obj).__name__!r}; name a "
            "function (or a class with __call__) after the ':'",
            code="handler.not_callable",
        )
    return obj


def _suggestions(obj: Any, name: str) -> str:
    """``; did you mean 'rollup'?`` (the closest names), else the functions it has."""
    import difflib  # only for a handler not found

    own = getattr(obj, "__name__", None)
    names = sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n))
                   and getattr(getattr(obj, n), "__module__", own) == own)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(n) for n in close) + "?"
    if names:
        more = f" and {len(names) - 8} more" if len(names) > 8 else ""
        return f"; it has {_names(names[:8])}{more}"
    return "; it defines no functions"


def _module_label(module: ModuleType) -> str:
    path = getattr(module, "__file__", None)
    return f"module {path!r}" if module.__name__.startswith("_worker_handler_") else (
        f"module {module.__name__!r}"
    )


def _inspect(spec: str, function: Callable[..., Any], given: Set[str]) -> Handler:
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError) as e:
        raise HandlerLoadError(
            f"handler {spec!r} has no inspectable signature: {e}", code="handler.bad_signature"
        ) from e
    context_param = _context_param(parameters, given)
    rest = [p for p in parameters if p.name != context_param]
    if any(p.kind == p.POSITIONAL_ONLY for p in rest):
        raise HandlerLoadError(
            f"handler {spec!r} has positional-only parameters after the context; "
            "parameters are passed by name",
            code="handler.bad_signature",
        )
    named = [p for p in rest if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in rest)
    return Handler(
        spec=spec,
        function=function,
        context_param=context_param,
        context_positional=_is_first_positional(parameters, context_param),
        accepted=None if takes_any else {p.name for p in named},
        required={p.name for p in named if p.default is p.empty},
        is_async=inspect.iscoroutinefunction(function)
        or inspect.iscoroutinefunction(type(function).__call__),
    )


def _is_first_positional(parameters: List[inspect.Parameter], name: Optional[str]) -> bool:
    if not parameters or parameters[0].name != name:
        return False
    first = parameters[0]
    return first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD)


def _context_param(parameters: List[inspect.Parameter], given: Set[str]) -> Optional[str]:
    """The parameter that receives the Context: ``ctx``/``context``, else the first one."""
    for p in parameters:
        if p.name in CONTEXT_NAMES and p.kind != p.VAR_KEYWORD:
            return p.name
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if positional and positional[0].name not in given:
        return positional[0].name
    return None


def _names(names) -> str:
    return ", ".join(repr(n) for n in names)
