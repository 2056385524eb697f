"""``python -m worker init DIR``, then what its README says, for real: the project's own tests,
its local run against ``emulate``, its package; and the folders init refuses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import build
from support import clean_env, last_line, run_worker, start_worker, wait_for_file

from worker import envfile


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("init") / "my-pipeline"
    proc = run_worker("init", str(root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"created {root} (11 files)")
    return root


def test_the_scaffold_holds_a_handler_data_secrets_tests_and_a_readme(project):
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == [".gitignore", ".workerignore", "README.md", "batch.toml",
                     "data/lake/raw/orders/2024-01-31.csv", "handlers/__init__.py",
                     "handlers/orders.py", "pytest.ini", "requirements.txt", "secrets.json",
                     "tests/test_orders.py"]
    handler = (project / "handlers" / "orders.py").read_text()
    for use in ("ctx.lake.dataset(", "ctx.sql(", "ctx.secrets[", "ctx.lake.write_table("):
        assert use in handler
    assert "run_handler(" in (project / "tests" / "test_orders.py").read_text()
    readme = (project / "README.md").read_text()
    for command in ("python -m worker emulate --env-file .emulators.env --load-dir data/lake "
                    "--load-secrets secrets.json",
                    "python -m worker run handlers.orders:summarize --param date=2024-01-31",
                    "python -m pytest", "python -m worker package . --out my-pipeline.zip",
                    "python -m worker spec all --package my-pipeline.zip --out specs/",
                    '"Deploy: from a handler folder to a\nrunning pool"'):
        assert command in readme


def test_the_scaffold_is_lint_clean(project):
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--isolated", "--target-version", "py38",
                           "--select", "E,F,W,I,B,UP,SIM", str(project)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_its_own_tests_pass_against_the_emulators(project):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=str(project), env=clean_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_its_readme_local_run_works_against_emulate(project):
    """The README's first command: emulate with the sample data and secrets, then the
    handler and `lake ls` with the env file's variables."""
    env_file = project / ".emulators.env"
    emulate = start_worker("emulate", "--env-file", ".emulators.env", "--load-dir", "data/lake",
                           "--load-secrets", "secrets.json", "--lake-port", "0",
                           "--vault-port", "0", "--identity-port", "0", cwd=project)
    try:
        wait_for_file(env_file)
        env = clean_env(**envfile.parse(env_file.read_text()))  # as loaded by a user
        run = run_worker("run", "handlers.orders:summarize", "--param", "date=2024-01-31",
                         cwd=project, env=env)
        assert run.returncode == 0, run.stderr
        assert "task succeeded" in last_line(run.stderr)
        record = json.loads((project / "result.json").read_text())
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


def test_it_packages_without_its_data_secrets_tests_or_local_records(project, tmp_path):
    (project / "result.json").write_text("{}")  # a local run's record
    (project / "old.zip").write_bytes(b"PK")   # an earlier package
    out = tmp_path / "my-pipeline.zip"
    result = build(project, out)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert "app/handlers/orders.py" in names
    assert not [n for n in names if n.startswith(("app/data/", "app/tests/", "app/secrets",
                                                  "app/result.json", "app/old.zip"))]
    assert "handlers.orders" in manifest["handler_modules"]
    assert manifest["name"] == "my-pipeline"
    assert "app/batch.toml" not in names
    # its batch.toml gives the deploy documents: one task per day, for the handler's date
    specs = tmp_path / "specs"
    proc = subprocess.run([sys.executable, "-m", "worker", "spec", "all", "--package", str(out),
                           "--out", str(specs)], cwd=str(project), env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    tasks = json.loads((specs / "tasks-001.json").read_text())
    assert len(tasks) == 1 and "date=2024-01-31" in tasks[0]["commandLine"]


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


def test_an_empty_folder_is_fine(tmp_path):
    proc = run_worker("init", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "handlers" / "orders.py").exists()
