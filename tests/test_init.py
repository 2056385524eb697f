"""``python -m worker init DIR --template NAME``, then what each project's README says, for
real: its own tests, a local run against ``emulate``, its package (which leaves out its data,
tests, secrets and the deploy documents), its documents from ``spec all`` and, for the
fan-out and the legacy program, the whole job on ``local-batch``; ``init --list``; and the
folders and templates init refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import build
from support import clean_env, last_line, run_worker, start_worker, wait_for_file

from worker import envfile
from worker.commands.scaffold import TEMPLATES

FILES = {
    "orders": ["README.md", "batch.toml", "data/lake/raw/orders/2024-01-31.csv",
               "handlers/__init__.py", "handlers/orders.py", "pytest.ini", "requirements.txt",
               "secrets.json", "tests/test_orders.py"],
    "fanout": ["README.md", "batch.toml", "data/lake/raw/orders/date=2024-01-30/part-0.csv",
               "data/lake/raw/orders/date=2024-01-31/part-0.csv",
               "data/lake/raw/orders/date=2024-02-01/part-0.csv", "handlers/__init__.py",
               "handlers/pipeline.py", "pytest.ini", "requirements.txt",
               "tests/test_pipeline.py"],
    "legacy": ["README.md", "batch.toml", "data/lake/raw/exports/customers-2024-01.csv",
               "data/lake/raw/exports/customers-2024-02.csv", "handlers/__init__.py",
               "handlers/convert.py", "pytest.ini", "requirements.txt",
               "tests/test_convert.py"],
}
#: How many of each project's own tests pass.
OWN_TESTS = {"orders": 2, "fanout": 4, "legacy": 3}
#: What each package holds of the project, and which handlers its summary lists.
HANDLERS = {"orders": {"handlers/orders.py": ["summarize"]},
            "fanout": {"handlers/pipeline.py": ["merge", "partition"]},
            "legacy": {"handlers/convert.py": ["to_utf8"]}}


@pytest.fixture(scope="module", params=list(TEMPLATES))
def project(request, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("init-" + request.param) / "my-pipeline"
    proc = run_worker("init", str(root), "--template", request.param)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("created %s (%d files) from the template %s: " % (
        root, len(FILES[request.param]) + 2, request.param))
    return root


def template(project: Path) -> str:
    return project.parent.name.split("-")[1].rstrip("0123456789")


def test_the_list_names_every_template_with_its_first_command():
    proc = run_worker("init", "--list")
    assert proc.returncode == 0, proc.stderr
    for name, entry in TEMPLATES.items():
        assert "%s%s\n    %s\n    first run: %s\n" % (
            name, " (the default)" if name == "orders" else "", entry.summary,
            entry.first_run) in proc.stdout


def test_the_project_holds_handlers_data_tests_ignore_files_and_a_readme(project):
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == sorted(FILES[template(project)] + [".gitignore", ".workerignore"])
    for ignored in ("data/", "tests/", "specs/", ".worker/", ".emulators.env", "*.zip"):
        assert ignored + "\n" in (project / ".workerignore").read_text()
    for ignored in ("specs/", ".worker/", ".emulators.env", "result.json", "*.zip"):
        assert ignored + "\n" in (project / ".gitignore").read_text()
    readme = (project / "README.md").read_text()
    assert readme.startswith("# my-pipeline\n") and "{{name}}" not in readme
    for command in ("python -m worker emulate --env-file .emulators.env --load-dir data/lake",
                    "python -m pytest", "python -m worker package . --out my-pipeline.zip",
                    "spec all --package my-pipeline.zip --out specs/",
                    "python -m worker local-batch --package my-pipeline.zip --specs specs/ "
                    "--emulators"):
        assert command in readme, command
    assert TEMPLATES[template(project)].first_run.split(" -- ")[0] in readme.replace(
        " \\\n   ", "")


def test_the_project_is_lint_clean(project):
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--isolated", "--target-version", "py38",
                           "--select", "E,F,W,I,B,UP,SIM", "."], cwd=str(project),
                          capture_output=True, text=True)  # as its author runs it
    assert proc.returncode == 0, proc.stdout


def test_its_own_tests_pass_against_the_emulators(project):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=str(project), env=clean_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "%d passed" % OWN_TESTS[template(project)] in proc.stdout
    assert not (project / "result.json").exists()  # the tests leave the project as it was


def test_it_packages_without_its_data_tests_secrets_or_deploy_documents(project, tmp_path):
    (project / "result.json").write_text("{}")  # a local run's record
    (project / "old.zip").write_bytes(b"PK")   # an earlier package
    (project / "specs").mkdir(exist_ok=True)   # what `spec all --out specs/` wrote before
    (project / "specs" / "items.json").write_text("{}")
    (project / ".emulators.env").write_text("A=1\n")
    out = tmp_path / "my-pipeline.zip"
    result = build(project, out)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        names = [n for n in archive.namelist() if n.startswith("app/")]
        manifest = json.loads(archive.read("manifest.json"))
    expected = [f for f in FILES[template(project)] if f.startswith("handlers/")]
    assert names == sorted("app/" + f for f in ["README.md", "requirements.txt", *expected])
    assert manifest["handlers"] == HANDLERS[template(project)]
    assert manifest["name"] == "my-pipeline"
    assert "warning" not in result.stderr  # no module at the root without a handler
    for path in ("result.json", "old.zip", ".emulators.env"):
        (project / path).unlink()


def test_the_orders_readme_run_works_against_emulate(tmp_path):
    """The README's first commands: emulate with the sample data and secrets (--watch),
    then the handler and `lake ls` with the env file's variables."""
    project = tmp_path / "my-pipeline"
    assert run_worker("init", str(project)).returncode == 0
    env_file = project / ".emulators.env"
    emulate = start_worker("emulate", "--env-file", ".emulators.env", "--load-dir", "data/lake",
                           "--load-secrets", "secrets.json", "--watch", "--lake-port", "0",
                           "--vault-port", "0", "--identity-port", "0", cwd=project)
    try:
        wait_for_file(env_file)
        env = clean_env(**envfile.parse(env_file.read_text()))  # as loaded by a user
        run = run_worker("run", "handlers.orders:summarize", "--param", "date=2024-01-31",
                         "--result", str(project.parent / "result.json"), cwd=project, env=env)
        assert run.returncode == 0, run.stderr
        assert "task succeeded" in last_line(run.stderr)
        record = json.loads((project.parent / "result.json").read_text())
        assert record["return_value"] == {"regions": 3, "orders": 6}
        listing = run_worker("lake", "ls", "curated", "-r", cwd=project, env=env)
        assert listing.returncode == 0, listing.stderr
        for name in ("2024-01-31.json", "2024-01-31.json.sig", "2024-01-31.parquet"):
            assert f"curated/orders/{name}\n" in listing.stdout
    finally:
        emulate.send_signal(signal.SIGTERM)
        _, err = emulate.communicate(timeout=30)
    assert emulate.returncode == 0, err
    assert "emulate: loaded 1 file from data/lake into data" in err
    assert not env_file.exists()  # removed at the stop


def test_the_readme_deploy_steps_run_the_job(project, tmp_path):
    """Step 4: `spec all` (a fan-out listing the sample lake), then the whole job on
    local-batch with the emulators, the sample data and secrets."""
    name = template(project)
    out = tmp_path / "my-pipeline.zip"
    assert build(project, out).returncode == 0
    env = clean_env(WORKER_LAKE_URL="file://%s" % (project / "data" / "lake"))
    spec = run_worker("spec", "all", "--package", str(out), "--out", str(tmp_path / "specs"),
                      cwd=project, env=env, timeout=120)
    assert spec.returncode == 0, spec.stderr
    tasks = json.loads((tmp_path / "specs" / "tasks-001.json").read_text())
    assert [t["id"] for t in tasks] == {"orders": ["1"], "fanout": ["1", "2", "3", "merge"],
                                        "legacy": ["1", "2"]}[name]
    secrets = ["--secrets", "secrets.json"] if name == "orders" else []
    job = run_worker("local-batch", "--package", str(out), "--specs", str(tmp_path / "specs"),
                     "--emulators", "--lake-dir", "data/lake", *secrets, "--root",
                     str(tmp_path / "node"), cwd=project, env=clean_env(), timeout=600)
    assert job.returncode == 0, job.stdout + job.stderr
    assert "%d of %d tasks succeeded" % (len(tasks), len(tasks)) in job.stdout


@pytest.mark.parametrize("make, message", [
    (lambda d: (d.mkdir(), (d / "keep.txt").write_text("x")), "is not empty; init writes into "
     "a new or empty folder and never overwrites"),
    (lambda d: d.write_text("x"), "is a file; give init a new or empty folder"),
])
def test_a_folder_with_files_or_a_file_is_refused(tmp_path, make, message):
    target = tmp_path / "there"
    make(target)
    proc = run_worker("init", str(target))
    assert proc.returncode == 2
    assert last_line(proc.stderr).endswith(f"{str(target)!r} {message} (exit 2)")
    assert proc.stdout == ""


def test_an_unknown_template_or_no_folder_is_refused(tmp_path):
    proc = run_worker("init", str(tmp_path / "x"), "--template", "nope")
    assert proc.returncode == 2
    assert last_line(proc.stderr).endswith(
        "unknown template 'nope'; the templates are orders, fanout, legacy (python -m worker "
        "init --list) (exit 2)")
    assert not (tmp_path / "x").exists()
    proc = run_worker("init")
    assert proc.returncode == 2
    assert last_line(proc.stderr).endswith("init needs the project's folder: python -m worker "
                                           "init DIR [--template NAME] (or --list) (exit 2)")


def test_an_empty_folder_is_fine_and_the_default_is_orders(tmp_path):
    proc = run_worker("init", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "handlers" / "orders.py").exists()


def test_help_shows_the_templates_and_examples(capsys):
    from worker.cli import main

    assert main(["init", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--template NAME", "orders, fanout, legacy", "python -m worker init --list",
                 "python -m worker init my-fanout --template fanout"):
        assert text in out, text


def test_a_template_never_ships_caches(tmp_path):
    """A template's tests run in place leave caches there; init never copies them."""
    from worker.commands.scaffold import TEMPLATES_DIR, files

    cache = TEMPLATES_DIR / "orders" / "handlers" / "__pycache__"
    made = not cache.exists()
    cache.mkdir(exist_ok=True)
    (cache / "orders.cpython-38.pyc").write_bytes(b"x")
    try:
        assert not [f for f in files("orders", "x") if "__pycache__" in f]
    finally:
        (cache / "orders.cpython-38.pyc").unlink()
        if made:
            os.rmdir(str(cache))
