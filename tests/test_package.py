"""``python -m worker package``: what the zip holds, that it is reproducible, and one-line
errors with their own exit codes for bad input. Builds run for real (uv resolves against the
index; wheels come from the suite's cache in .ci-venvs/package-wheels, downloaded once)."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import PACKAGE_CACHE, REPO, build

from worker.cli import main
from worker.deploy import lockfile

sys.path.insert(0, str(REPO / "bootstrap"))
import wheelhouse  # noqa: E402

EXAMPLES = REPO / "examples"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project(tmp_path: Path, files: dict) -> Path:
    root = tmp_path / "project"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


HANDLER = {"jobs/work.py": "def run(ctx):\n    return 1\n"}


def test_the_zip_holds_the_start_task_launcher_lock_wheels_app_and_manifest(example_package):
    with zipfile.ZipFile(str(example_package)) as archive:
        names = archive.namelist()
        infos = archive.infolist()
        manifest = json.loads(archive.read("manifest.json"))
        lock = archive.read("locks/py38.txt").decode()
        package_env = archive.read("package.env").decode()
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}  # no executable bit anywhere
    for name in ("starttask.sh", "task.sh", "bootstrap/main.sh", "bootstrap/package.sh",
                 "bootstrap/wheelhouse.py", "bootstrap/tools.txt", "locks/py38.txt",
                 "manifest.json", "package.env", "app/handlers/report.py",
                 "app/handlers/sales.py", "app/requirements.txt"):
        assert name in names, name
    # .workerignore kept the sample lake, the local secrets and the quickstart out; the
    # deploy spec (batch.toml: a job's settings) is never packaged
    assert not [n for n in names if n.startswith(("app/data/", "app/secrets", "app/quick",
                                                  "app/.workerignore", "bootstrap/lock.sh",
                                                  "app/batch.toml"))]
    # the lock is the worker's, as it is, then what requirements.txt adds
    worker_pins = (REPO / "locks" / "py38.txt").read_text().split("\n", 1)[1]  # no header
    assert worker_pins in lock
    assert lock.startswith("# batch-worker lock for Python 3.8, "), "the start task checks it"
    added = [p.name for p in lockfile.parse(lock.split("# From requirements.txt:")[1])]
    assert added == ["tabulate"]
    assert manifest["lock_sha256"] == hashlib.sha256(lock.encode()).hexdigest()
    assert manifest["handler_modules"][:4] == ["handlers", "handlers.pipeline", "handlers.report",
                                               "handlers.sales"]
    assert (manifest["name"], manifest["version"], manifest["python"], manifest["platform"]) == (
        "examples", "1.0.0", "3.8", "manylinux_2_28_x86_64")
    assert "WORKER_PACKAGE_ID=%s\n" % manifest["package_id"] in package_env
    assert "WORKER_PACKAGE_PYTHON=3.8\n" in package_env
    wheels = sorted(n[len("wheels/"):] for n in names if n.startswith("wheels/"))
    assert wheels == manifest["wheels"]
    assert "batch_worker-0.1.0-py3-none-any.whl" in wheels
    assert any(w.startswith("uv-0.13.9-") for w in wheels)


def test_every_wheel_is_for_the_node_and_hashed_in_the_lock(example_package, tmp_path):
    with zipfile.ZipFile(str(example_package)) as archive:
        archive.extractall(str(tmp_path))
    locks = [tmp_path / "locks" / "py38.txt", tmp_path / "bootstrap" / "tools.txt"]
    wheelhouse.verify(locks, tmp_path / "wheels")  # every pin present, every hash in the lock
    names = [w.name for w in (tmp_path / "wheels").glob("*.whl")]
    pins = lockfile.parse(locks[0].read_text()) + lockfile.parse(locks[1].read_text())
    assert len(names) == len(pins) + 1  # and the worker's own
    for name in names:
        tags = name[:-4].split("-")[-3:]
        assert tags[0] in ("py3", "py2.py3", "cp38", "cp37"), name
        assert tags[2] == "any" or "x86_64" in tags[2] and "manylinux" in tags[2], name


def test_a_312_package_carries_the_312_lock_and_wheels_for_it(example_package_312, tmp_path):
    """--python 3.12: the worker's 3.12 lock (Ubuntu 24.04 nodes) and cp312 wheels; the start
    task reads its Python from package.env and refuses a lock of another Python."""
    with zipfile.ZipFile(str(example_package_312)) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        lock = archive.read("locks/py312.txt").decode()
        package_env = archive.read("package.env").decode()
        archive.extractall(str(tmp_path))
    assert "locks/py38.txt" not in names
    assert lock.startswith("# batch-worker lock for Python 3.12, manylinux_2_28_x86_64: ")
    assert (REPO / "locks" / "py312.txt").read_text().split("\n", 1)[1] in lock
    assert [p.name for p in lockfile.parse(lock.split("# From requirements.txt:")[1])] == [
        "tabulate"]
    assert (manifest["python"], manifest["lock"]) == ("3.12", "locks/py312.txt")
    assert "WORKER_PACKAGE_PYTHON=3.12\n" in package_env
    locks = [tmp_path / "locks" / "py312.txt", tmp_path / "bootstrap" / "tools.txt"]
    wheelhouse.verify(locks, tmp_path / "wheels")
    for name in manifest["wheels"]:
        tags = name[:-4].split("-")[-3:]
        assert tags[0] in ("py3", "py2.py3", "cp312") or tags[1] == "abi3", name
    pyarrow = [w for w in manifest["wheels"] if w.startswith("pyarrow-")]
    assert len(pyarrow) == 1 and "-cp312-cp312-" in pyarrow[0]
    out = (example_package_312.parent / "stdout.txt").read_text()
    assert "  python    CPython 3.12 on manylinux_2_28_x86_64\n" in out


def test_it_prints_size_wheels_python_platform_and_lock_hash(example_package):
    out = (example_package.parent / "stdout.txt").read_text()
    manifest = json.loads(zipfile.ZipFile(str(example_package)).read("manifest.json"))
    size = example_package.stat().st_size
    assert out.splitlines()[0] == "built %s" % example_package
    assert "  size      %.1f MiB (%d bytes), sha256 %s\n" % (size / 2**20, size,
                                                          sha256(example_package)) in out
    assert "  wheels    %d\n" % len(manifest["wheels"]) in out
    assert "  python    CPython 3.8 on manylinux_2_28_x86_64\n" in out
    assert "sha256 %s\n" % manifest["lock_sha256"] in out
    # the files taken as handler modules, with their handlers; the other modules
    assert out.endswith("  handlers  handlers/pipeline.py: merge, partition\n"
                        "            handlers/report.py: daily\n"
                        "            handlers/sales.py: rollup\n"
                        "            legacy/videos.py: to_avi\n"
                        "  modules   handlers/__init__.py (no handler)\n")
    assert manifest["handlers"] == {"handlers/pipeline.py": ["merge", "partition"],
                                    "handlers/report.py": ["daily"],
                                    "handlers/sales.py": ["rollup"],
                                    "legacy/videos.py": ["to_avi"]}


def test_the_same_inputs_give_the_same_bytes_from_another_folder(example_package, tmp_path):
    """A second build, of a copy of the project elsewhere, with the worker wheel rebuilt."""
    copy = tmp_path / "elsewhere" / "examples"
    shutil.copytree(str(EXAMPLES), str(copy))
    out = tmp_path / "again.zip"
    result = build(copy, out)
    assert result.returncode == 0, result.stderr
    assert sha256(out) == sha256(example_package)


def test_the_other_python_builds_the_same_bytes(example_package, tmp_path):
    """The builder's Python does not show in the package (the wheel's build backend is
    pinned): built with the suite's other venv, when run.sh made one."""
    other = "py312" if sys.version_info[:2] == (3, 8) else "py38"
    python = REPO / ".ci-venvs" / other / "bin" / "python"
    if not python.exists():
        pytest.skip("no .ci-venvs/%s" % other)
    out = tmp_path / "other.zip"
    result = subprocess.run([str(python), "-m", "worker", "package", str(EXAMPLES), "--out",
                             str(out), "--cache-dir", str(PACKAGE_CACHE)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert sha256(out) == sha256(example_package)


def test_requirements_from_pyproject_caches_skipped_apt_sources_copied(tmp_path):
    """[project] gives name, version and dependencies; a pin the worker already has stays
    once; a dotenv template is no secret; caches, virtualenvs and the output inside the
    project are not packaged; apt-sources.json goes to the package's root."""
    root = project(tmp_path, {
        **HANDLER,
        "pyproject.toml": '[project]\nname = "tiny"\nversion = "2.1"\n'
                          'dependencies = ["tabulate==0.9.0", "requests"]\n',
        ".env.example": "TOKEN=\n",
        "apt-sources.json": '{"repositories": [{"name": "vendor", '
                            '"key_file": "keys/vendor.asc"}]}\n',
        "keys/vendor.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        "jobs/__pycache__/work.cpython-38.pyc": "x",
        "jobs/old.pyc": "x",
        ".git/config": "x",
        ".venv/lib/site.py": "x",
        "env2/pyvenv.cfg": "home = /usr/bin",
        "env2/lib/python3.8/site-packages/x.py": "x",
    })
    out = root / "dist" / "tiny.zip"
    out.parent.mkdir()
    result = build(root, out)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(str(out)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        lock = archive.read("locks/py38.txt").decode()
        names = archive.namelist()
    assert (manifest["name"], manifest["version"], manifest["requirements"]) == (
        "tiny", "2.1", "pyproject.toml")
    assert [p.name for p in lockfile.parse(lock)].count("requests") == 1
    assert "tabulate" in [p.name for p in lockfile.parse(lock)]
    assert sorted(n for n in names if n.startswith("app/")) == [
        "app/.env.example", "app/jobs/work.py", "app/keys/vendor.asc", "app/pyproject.toml"]
    assert "apt-sources.json" in names and manifest["apt_sources"] is True
    assert "keys/vendor.asc" in names, "a key_file rides beside the declaration"


def test_allow_secret_files_packages_them(tmp_path):
    root = project(tmp_path, {**HANDLER, ".env": "TOKEN=x\n"})
    out = tmp_path / "app.zip"
    result = build(root, out, "--allow-secret-files", "--name", "app", "--version", "3")
    assert result.returncode == 0, result.stderr
    assert "app/.env" in zipfile.ZipFile(str(out)).namelist()


def one_line_error(result, code: int, message: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.splitlines()[-1] == "package: error: " + message


@pytest.mark.parametrize("files,name,why", [
    ({".env": "A=1"}, ".env", "a dotenv file"),
    ({"certs/client.pem": "x"}, "certs/client.pem", "a PEM key or certificate"),
    ({"deploy.KEY": "x"}, "deploy.KEY", "a private key"),
    ({"local.settings.json": "{}"}, "local.settings.json", "Azure Functions local settings"),
    ({"secrets.json": "{}"}, "secrets.json", "a secrets file"),
    ({"id_rsa": "x"}, "id_rsa", "an SSH private key"),
    ({".azure/msal_token_cache.json": "{}"}, ".azure/msal_token_cache.json",
     "a file in a .azure folder"),
    ({"conf.py": "KEY = '''-----BEGIN RSA PRIVATE KEY-----\nMIIEow'''\n"}, "conf.py",
     "it contains a private key"),
    ({"settings.py": "CONN = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=%s=='\n"
      % ("A" * 86)}, "settings.py", "it contains a storage account key"),
])
def test_a_secret_looking_file_is_refused_naming_it(tmp_path, files, name, why):
    root = project(tmp_path, {**HANDLER, **files})
    out = tmp_path / "out" / "app.zip"
    out.parent.mkdir()
    result = build(root, out)
    one_line_error(result, 13, "%s/%s looks like a secret (%s); remove it, list it in "
                               ".workerignore, or pass --allow-secret-files" % (root, name, why))
    assert len(result.stderr.splitlines()) == 1
    assert "MIIEow" not in result.stderr and "A" * 40 not in result.stderr
    assert list(out.parent.iterdir()) == []  # nothing left behind


def test_several_secrets_are_counted(tmp_path):
    root = project(tmp_path, {**HANDLER, ".env": "A=1", "b.pem": "x", "c.pfx": "x"})
    result = build(root, tmp_path / "app.zip")
    assert result.returncode == 13
    assert "(a dotenv file) (and 2 more);" in result.stderr


def test_a_project_without_a_module_is_refused(tmp_path):
    root = project(tmp_path, {"README.md": "notes", "data/x.csv": "a\n"})
    result = build(root, tmp_path / "app.zip")
    one_line_error(result, 10, "no Python module in %s: a project is a folder of handler "
                               "modules (e.g. handlers/sales.py with def daily(ctx, date))" % root)


def test_a_requirement_without_a_wheel_for_the_node_is_named(tmp_path):
    root = project(tmp_path, {**HANDLER, "requirements.txt": "tabulate\ndocopt==0.6.2\n"})
    result = build(root, tmp_path / "app.zip")
    one_line_error(result, 11, "%s/requirements.txt: docopt has no wheel for CPython 3.8 on "
                               "manylinux_2_28_x86_64, and packages are never built from source; "
                               "pin a version that ships one, or drop it" % root)
    assert not (tmp_path / "app.zip").exists()


def test_a_requirement_in_conflict_with_the_worker_pins_is_unresolvable(tmp_path):
    root = project(tmp_path, {**HANDLER, "requirements.txt": "duckdb>=1.3\n"})
    result = build(root, tmp_path / "app.zip")
    one_line_error(result, 12, "%s/requirements.txt cannot be resolved with the worker's pins: "
                               "Because you require duckdb>=1.3 and duckdb==1.2.2, we can "
                               "conclude that your requirements are unsatisfiable." % root)


def test_an_unknown_requirement_is_unresolvable(tmp_path):
    root = project(tmp_path, {**HANDLER, "requirements.txt": "surely-no-such-package-x9\n"})
    result = build(root, tmp_path / "app.zip")
    one_line_error(result, 12, "%s/requirements.txt: surely-no-such-package-x9 was not found "
                               "on the package index" % root)


@pytest.mark.parametrize("out,reason", [
    ("/proc/app.zip", None),
    ("{tmp}/file.txt/app.zip", "Not a directory"),
    ("{tmp}/no/such/dir/app.zip", "No such file or directory"),
    ("{tmp}", "it is a folder"),
])
def test_an_unwritable_output_is_refused_before_any_work(tmp_path, out, reason):
    (tmp_path / "file.txt").write_text("x")
    root = project(tmp_path, HANDLER)
    out = out.format(tmp=tmp_path)
    result = build(root, Path(out))
    assert result.returncode == 14, result.stderr
    assert len(result.stderr.splitlines()) == 1  # before resolving anything
    assert result.stderr.startswith("package: error: cannot write %s: " % out)
    if reason:
        assert result.stderr.rstrip().endswith(reason)


def test_bad_options_are_usage_errors(tmp_path, capsys):
    root = project(tmp_path, HANDLER)
    out = str(tmp_path / "a.zip")
    for python in ("3.9", "3.11"):
        assert main(["package", str(root), "--out", out, "--python", python]) == 2
        err = capsys.readouterr().err.splitlines()[-1]
        assert err.startswith("package: error: no worker lock for Python %s (" % python)
        assert err.endswith("); the worker is locked for: 3.8, 3.12 (pass one of them to "
                            "--python)")
    assert main(["package", str(root), "--out", out, "--name", "bad name"]) == 2
    assert "application id 'bad name' is not one Batch takes" in capsys.readouterr().err
    assert main(["package", str(tmp_path / "missing"), "--out", out]) == 2
    assert capsys.readouterr().err == "package: error: project folder not found: %s\n" % (
        tmp_path / "missing")
    assert main(["package", str(root)]) == 2  # --out is required
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "a.zip").exists()


def test_help_lists_the_exit_codes(capsys):
    assert main(["package", "--help"]) == 0
    out = capsys.readouterr().out
    assert "11 a requirement has no wheel for the node" in out
    assert "17 a module imports what\n  nothing in the package provides" in out
    assert '[package] optional_imports = ["ujson"]' in out
    assert "--allow-secret-files" in out


def test_extraction_with_zipfile_drops_every_executable_bit(example_package, tmp_path):
    with zipfile.ZipFile(str(example_package)) as archive:
        archive.extractall(str(tmp_path))
    executable = [p for p in tmp_path.rglob("*")
                  if p.is_file() and p.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP)]
    assert executable == []
