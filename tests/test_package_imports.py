"""``package`` knows what the handlers import: every import of the project's modules is
resolved against the standard library of the nodes' Python, the project itself and the
wheels of the package's lock (their RECORDs), and one nothing provides fails the build
(exit 17) naming the module, the file and line, and the fix. The handlers are listed by
file, and a module at the root without one is named in a warning.

The scans run on real source with ``ast``; the wheel index on the real wheels of the
examples' package; the builds for real (uv against the index, the suite's wheel cache)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import build

from worker.deploy.imports import (
    ModuleIndex,
    Providers,
    project_index,
    scan_module,
    wheel_index,
)
from worker.deploy.stdlib import stdlib_modules


def write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def imports_of(tmp_path: Path, source: str, python: str = "3.8"):
    path = write(tmp_path, {"mod.py": source}) / "mod.py"
    return [(i.module, i.line, i.guarded) for i in scan_module(path, "mod.py", python).imports]


# -- reading the source --------------------------------------------------------------------


def test_every_import_statement_is_read_with_its_line(tmp_path):
    source = ("import os, json as j\n"
              "from azure.storage import blob\n"
              "from pyarrow.parquet import read_table, write_table\n"
              "from . import sibling\n"
              "from .util import helper\n"
              "def f(ctx):\n"
              "    import tabulate\n"
              "    class C:\n"
              "        from yaml import safe_load\n")
    assert imports_of(tmp_path, source) == [
        ("os", 1, False), ("json", 1, False), ("azure.storage.blob", 2, False),
        ("pyarrow.parquet.read_table", 3, False), ("pyarrow.parquet.write_table", 3, False),
        ("tabulate", 7, False), ("yaml.safe_load", 9, False)]


def test_what_the_code_marks_optional_is_told_apart(tmp_path):
    source = ("from typing import TYPE_CHECKING\n"
              "try:\n"
              "    import ujson\n"
              "except ImportError:\n"
              "    import json as ujson\n"
              "try:\n"
              "    import orjson\n"
              "except ValueError:\n"
              "    pass\n"
              "if TYPE_CHECKING:\n"
              "    import pandas\n"
              "if sys.version_info >= (3, 11):\n"
              "    import tomllib\n"
              "else:\n"
              "    import tomli as tomllib\n"
              "if sys.version_info[:2] < (3, 9):\n"
              "    import backports.zoneinfo\n"
              "if os.environ.get('X'):\n"
              "    import either\n"
              "else:\n"
              "    import other\n")
    common = [("typing.TYPE_CHECKING", 1, False), ("ujson", 3, True), ("json", 5, False),
              ("orjson", 7, False)]
    assert imports_of(tmp_path, source, "3.8") == common + [
        ("tomli", 15, False), ("backports.zoneinfo", 17, False), ("either", 19, False),
        ("other", 21, False)]
    assert imports_of(tmp_path, source, "3.12") == common + [
        ("tomllib", 13, False), ("either", 19, False), ("other", 21, False)]


def test_handlers_are_top_level_functions_taking_ctx(tmp_path):
    path = write(tmp_path, {"h.py": "def a(ctx, day): pass\n"
                                    "async def b(x, *, ctx=None): pass\n"
                                    "def helper(rows): pass\n"
                                    "class K:\n"
                                    "    def m(self, ctx): pass\n"})
    scan = scan_module(path / "h.py", "h.py", "3.8")
    assert scan.handlers == ("a", "b") and scan.at_root and scan.parsed
    broken = write(tmp_path, {"bad.py": "def f(:\n"}) / "bad.py"
    assert not scan_module(broken, "bad.py", "3.8").parsed


# -- what provides a module ----------------------------------------------------------------


def test_the_standard_library_is_the_nodes_pythons():
    assert "tomllib" not in stdlib_modules("3.8") and "tomllib" in stdlib_modules("3.12")
    assert "distutils" in stdlib_modules("3.8") and "distutils" not in stdlib_modules("3.12")
    assert "asyncore" in stdlib_modules("3.11") and "asyncore" not in stdlib_modules("3.12")
    assert "zoneinfo" in stdlib_modules("3.9") and "zoneinfo" not in stdlib_modules("3.8")
    assert stdlib_modules("3.14") == stdlib_modules("3.13")  # a newer one: the newest known


def test_the_shipped_list_is_this_pythons():
    """Checked on every Python CI runs: 3.10+ against its own sys.stdlib_module_names; an
    older one against the modules of its standard library folder."""
    version = "%d.%d" % sys.version_info[:2]
    if sys.version_info >= (3, 10):
        assert stdlib_modules(version) == set(sys.stdlib_module_names) | {"__main__"}
        return
    import pkgutil
    import sysconfig

    paths = sysconfig.get_paths()
    folders = [paths["stdlib"], str(Path(paths["platstdlib"]) / "lib-dynload")]
    found = {m.name for m in pkgutil.iter_modules(folders)} | set(sys.builtin_module_names)
    tests_only = {n for n in found if n.startswith(("_test", "_xx", "xx")) or n in (
        "test", "_ctypes_test") or n.startswith("_sysconfigdata")}
    assert found - tests_only - {"site-packages"} <= stdlib_modules(version)


def test_wheels_provide_what_their_record_lists(example_package, tmp_path):
    with zipfile.ZipFile(str(example_package)) as archive:
        names = [n for n in archive.namelist() if n.startswith("wheels/")]
        archive.extractall(str(tmp_path), names)
    index = wheel_index(sorted((tmp_path / "wheels").glob("*.whl")))
    for module in ("azure.storage.blob", "azure.keyvault.secrets", "pyarrow.parquet", "duckdb",
                   "tabulate", "worker.testing", "_cffi_backend", "six",
                   "azure", "azure.storage"):  # the last two: namespace packages
        assert index.provides(module), module
    for module in ("azure.storage.queue", "azure.cosmos", "yaml", "pandas", "requests_oauth"):
        assert not index.provides(module), module


def test_the_record_paths_that_are_modules():
    index = ModuleIndex()
    for path in ("pkg/__init__.py", "pkg/sub/mod.py", "ns/part/__init__.py",
                 "fast.cpython-38-x86_64-linux-gnu.so", "tool-1.0.data/purelib/extra.py",
                 "tool-1.0.data/scripts/run.py", "tool-1.0.dist-info/METADATA",
                 "not-a-module/x.py", "pkg/data.json"):
        index.add_file(path)
    assert index.modules == {"pkg", "pkg.sub.mod", "ns.part", "fast", "extra"}
    assert index.provides("pkg.anything") and index.provides("ns") and index.provides("ns.part.x")
    assert not index.provides("ns.other") and not index.provides("run")


def test_providers_in_order_stdlib_project_wheels():
    wheels = ModuleIndex()
    wheels.add_file("tabulate/__init__.py")
    providers = Providers("3.8", project_index(["handlers/__init__.py", "jobs/work.py",
                                                "data/x.csv"]), wheels)
    for module in ("os.path", "handlers", "handlers.orders", "jobs.work", "tabulate"):
        assert providers.provide(module), module
    for module in ("tomllib", "jobs.other", "data", "yaml"):
        assert not providers.provide(module), module


# -- builds ------------------------------------------------------------------------------------

HANDLER = ("import json\n"
           "import tabulate\n"
           "from worker import PermanentError\n"
           "from .common import rows\n"
           "def report(ctx, day):\n"
           "    return tabulate.tabulate(rows(day))\n")


def test_a_missing_requirement_fails_the_build_naming_module_file_line_and_fix(tmp_path):
    root = write(tmp_path / "project", {"jobs/__init__.py": "", "jobs/report.py": HANDLER,
                                        "jobs/common.py": "import csv\ndef rows(d): return []\n"})
    out = tmp_path / "app.zip"
    result = build(root, out)
    assert result.returncode == 17, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "package: error: jobs/report.py:2 imports tabulate, which nothing in the package "
        "provides (not the standard library of Python 3.8, the project's modules, the "
        "worker's lock or requirements.txt); add the distribution that provides tabulate to "
        "requirements.txt, pinned (or, if the code runs without it, list it in "
        "optional_imports of batch.toml's [package])")
    assert not out.exists()
    # the fix: the requirement, pinned; the build then lists the handler by file
    (root / "requirements.txt").write_text("tabulate==0.9.0\n")
    result = build(root, out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("  handlers  jobs/report.py: report\n"
                                  "  modules   jobs/__init__.py, jobs/common.py (no handler)\n")
    assert "checked 4 imports of 3 modules against Python 3.8's standard library" in \
        result.stderr


def test_optional_modules_from_batch_toml_or_pyproject_and_a_root_script(tmp_path):
    root = write(tmp_path / "project", {
        "jobs/work.py": "import ujson\nimport cupy.cuda\ndef run(ctx):\n    return 1\n",
        "batch.toml": '[package]\noptional_imports = ["ujson"]\n',
        "pyproject.toml": '[project]\nname = "opt"\n[tool.batch-worker]\n'
                          'optional-imports = ["cupy"]\n',
        "make_data.py": "import random\nprint(random.random())\n",
        "tests/test_work.py": "import pytest\n",
        ".workerignore": "tests/\n",
    })
    result = build(root, tmp_path / "app.zip")
    assert result.returncode == 0, result.stderr
    assert ("package: warning: make_data.py at the project's root defines no handler (no "
            "function takes ctx) and is packaged as a module; if it is a local script, list "
            "it in .workerignore\n") in result.stderr
    manifest = json.loads(zipfile.ZipFile(str(tmp_path / "app.zip")).read("manifest.json"))
    assert manifest["optional_imports"] == ["cupy", "ujson"]
    assert manifest["handlers"] == {"jobs/work.py": ["run"]}
    # a root script that imports what the nodes lack: the fix names the ignore file first
    (root / "make_data.py").write_text("import faker\n")
    (root / "jobs" / "work.py").write_text("import tomllib\ndef run(ctx):\n    return 1\n")
    result = build(root, tmp_path / "app.zip")
    assert result.returncode == 17, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "package: error: jobs/work.py:1 imports tomllib, which nothing in the package "
        "provides (not the standard library of Python 3.8, the project's modules, the "
        "worker's lock or requirements.txt) (and 1 more: faker at make_data.py:1); tomllib "
        "is in the standard library of Python 3.11, 3.12, 3.13 only: package for one of "
        "those (--python), or import it under a sys.version_info test")
    (root / "jobs" / "work.py").write_text("import csv\ndef run(ctx):\n    return 1\n")
    result = build(root, tmp_path / "app.zip")
    assert result.returncode == 17, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "package: error: make_data.py:1 imports faker, which nothing in the package "
        "provides (not the standard library of Python 3.8, the project's modules, the "
        "worker's lock or requirements.txt); make_data.py defines no handler: if it is a "
        "local script, list it in .workerignore; else add the distribution that provides "
        "faker to requirements.txt, pinned (or, if the code runs without it, list it in "
        "optional_imports of batch.toml's [package])")


@pytest.mark.parametrize("files, message", [
    ({"batch.toml": '[package]\noptional_imports = "ujson"\n'},
     "batch.toml: [package] optional_imports must be a list of module names, e.g. "
     "[\"ujson\", \"cupy\"], got 'ujson'"),
    ({"pyproject.toml": '[tool.batch-worker]\noptional-imports = [1]\n'},
     "pyproject.toml: [tool.batch-worker] optional-imports must be a list of module names, "
     "e.g. [\"ujson\", \"cupy\"], got [1]"),
])
def test_a_bad_optional_list_is_a_usage_error(tmp_path, files, message):
    root = write(tmp_path / "project", {"jobs/work.py": "def run(ctx):\n    return 1\n",
                                        **files})
    result = build(root, tmp_path / "app.zip")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == "package: error: %s/%s" % (root, message)
