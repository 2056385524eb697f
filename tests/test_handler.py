"""Handler loading: one broken example per stage, each with its exact message and code."""

from __future__ import annotations

import re

import pytest
from support import TESTS_DIR, last_line, read_result, run_worker

from worker.errors import USAGE, HandlerLoadError, ParameterError
from worker.handler import load_handler

FORMS = "expected 'package.module:function' or 'path/to/file.py:function'"


@pytest.fixture(autouse=True)
def _in_tests_dir(monkeypatch):
    monkeypatch.chdir(TESTS_DIR)


@pytest.mark.parametrize(
    "spec, code, message",
    [
        ("nocolon", "handler.bad_spec", f"bad handler spec 'nocolon': {FORMS}"),
        (":f", "handler.bad_spec", f"bad handler spec ':f': {FORMS}"),
        ("handlers.good:1bad", "handler.bad_spec", f"bad handler spec 'handlers.good:1bad': {FORMS}"),
        (
            "a b:c",
            "handler.bad_spec",
            f"bad handler spec 'a b:c': 'a b' is neither a module name nor a .py file; {FORMS}",
        ),
        (
            "handlers.missing_mod:f",
            "handler.import_error",
            "cannot import handler 'handlers.missing_mod:f': no module named "
            "'handlers.missing_mod' (run from the folder that contains it, or set PYTHONPATH)",
        ),
        (
            "handlers/nofile.py:f",
            "handler.import_error",
            "cannot import handler 'handlers/nofile.py:f': file 'handlers/nofile.py' does not "
            "exist; check the path (relative to the folder the task runs in)",
        ),
        (
            "handlers.broken_import:handler",
            "handler.import_error",
            "importing handler 'handlers.broken_import:handler' failed: ModuleNotFoundError: "
            "No module named 'does_not_exist_anywhere_xyz'; install "
            "'does_not_exist_anywhere_xyz' where the task runs (add it to the project's "
            "requirements and rebuild the application package)",
        ),
        (
            "handlers.broken_raise:handler",
            "handler.import_error",
            "importing handler 'handlers.broken_raise:handler' failed: RuntimeError: "
            "configuration missing at import time; the module raised while it was imported: "
            "fix that (python -c 'import handlers.broken_raise' shows the traceback)",
        ),
        (
            "handlers.good:nope",
            "handler.missing",
            "handler 'handlers.good:nope' not found: module 'handlers.good' has no attribute "
            "'nope'; did you mean 'ignores'?",
        ),
        (
            "handlers.good:NOT_CALLABLE",
            "handler.not_callable",
            "handler 'handlers.good:NOT_CALLABLE' is not callable: it is of type 'int'; name a "
            "function (or a class with __call__) after the ':'",
        ),
        (
            "handlers.broken_signature:positional_only_after_ctx",
            "handler.bad_signature",
            "handler 'handlers.broken_signature:positional_only_after_ctx' has positional-only "
            "parameters after the context; parameters are passed by name",
        ),
    ],
)
def test_each_loading_stage_has_its_own_message(spec, code, message):
    with pytest.raises(HandlerLoadError) as info:
        load_handler(spec)
    assert info.value.code == code
    assert str(info.value) == message
    assert info.value.exit_code == USAGE


def test_syntax_error_names_file_and_line():
    with pytest.raises(HandlerLoadError) as info:
        load_handler("handlers.broken_syntax:handler")
    assert info.value.code == "handler.syntax_error"
    path = re.escape(str(TESTS_DIR / "handlers" / "broken_syntax.py"))
    assert re.fullmatch(
        rf"syntax error in handler 'handlers.broken_syntax:handler' \({path}, line \d\): .+; "
        "fix the code there",
        str(info.value),
    )


def test_file_spec_loads_a_function_from_a_path():
    handler = load_handler("handlers/good.py:typed", {"n": 1})
    assert handler.call(None, {"n": 1})["n"] == 1
    assert handler.function.__module__ == "_worker_handler_good"


@pytest.mark.parametrize(
    "params, code, message",
    [
        (
            {"date": "d", "x": "1"},
            "params.unknown",
            "handler 'handlers.good:rollup' does not accept parameter(s) 'x'; "
            "it accepts: 'date', 'region'",
        ),
        (
            {},
            "params.missing",
            "handler 'handlers.good:rollup' requires parameter(s) 'date'; "
            "pass them with --param date=VALUE",
        ),
    ],
)
def test_parameters_the_signature_cannot_take_are_refused(params, code, message):
    with pytest.raises(ParameterError) as info:
        load_handler("handlers.good:rollup", params)
    assert (info.value.code, str(info.value)) == (code, message)


def test_kwargs_handler_accepts_any_parameter():
    load_handler("handlers.good:takes_kwargs", {"anything": 1, "at_all": 2})


def test_context_goes_to_ctx_by_name_or_first_positional():
    assert load_handler("handlers.good:by_name", {"date": "d"}).context_param == "ctx"
    assert load_handler("handlers.good:rollup", {"date": "d"}).context_param == "ctx"
    assert load_handler("handlers.good:no_context", {}).context_param is None


@pytest.mark.parametrize(
    "spec, code",
    [
        ("nocolon", "handler.bad_spec"),
        ("handlers.missing_mod:f", "handler.import_error"),
        ("handlers.broken_syntax:handler", "handler.syntax_error"),
        ("handlers.good:nope", "handler.missing"),
        ("handlers.good:NOT_CALLABLE", "handler.not_callable"),
    ],
)
def test_cli_exits_2_with_one_final_line_and_a_result(tmp_path, spec, code):
    result_path = tmp_path / "result.json"
    proc = run_worker("run", spec, "--result", str(result_path))
    assert proc.returncode == USAGE
    final = last_line(proc.stderr)
    assert "exit 2 (configuration or deployment error): HandlerLoadError:" in final
    assert "Traceback" not in proc.stderr  # a usage error is not a crash
    record = read_result(result_path)
    assert record["status"] == "failed"
    assert record["exit_code"] == USAGE
    assert record["error"]["code"] == code
    assert record["error"]["type"] == "HandlerLoadError"


def test_a_handler_not_found_suggests_the_closest_names_or_lists_them():
    with pytest.raises(HandlerLoadError, match=r"did you mean 'rollup' or 'async_rollup'\?$"):
        load_handler("handlers.good:rolup")
    with pytest.raises(HandlerLoadError, match=r"; it has 'bad_input', 'denied', "
                                               r"'fixed_after_first'$"):
        load_handler("handlers.retries:zzz_unlike_anything")
