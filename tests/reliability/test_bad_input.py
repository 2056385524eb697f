"""The bad-input table: each case is one mistake a user or a deployment makes, run as a real
task against the emulators; each asserts the exit code of its kind (2 configuration, 3
transient, 4 bad input data, 1 a bug in the handler, 5 a commit conflict; for legacy
programs also their own code and 128+N) and that the final line names the input and the
fix. Only a bug (exit 1) may print a traceback."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import pytest
from reliability_support import run, task_env
from support import last_line

GOOD = "handlers.good:rollup"


@dataclass
class Case:
    id: str
    args: List[str]
    code: int
    says: List[str]  # substrings of the final line
    env: Dict[str, Optional[str]] = field(default_factory=dict)  # None: unset it
    setup: Optional[Callable] = None  # (emulators, filesystem, tmp_path) -> env changes


def bi(fn: str, *params: str) -> List[str]:
    args = ["run", f"handlers.bad_input:{fn}"]
    for p in params:
        args += ["--param", p]
    return args


def seeded(path: str, data: bytes) -> Callable:
    def setup(emulators, filesystem, tmp_path):
        emulators.seed_file(filesystem, path, data)
    return setup


def fault(operation: str, service: str = "lake", **options) -> Callable:
    def setup(emulators, filesystem, tmp_path):
        emulators.fault(service, operation, times=None, **options)
    return setup


def other_ca(emulators, filesystem, tmp_path):
    import trustme

    bundle = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    return {"REQUESTS_CA_BUNDLE": str(bundle)}


def a_file(name: str) -> Callable:
    def setup(emulators, filesystem, tmp_path):
        (tmp_path / "a-file").write_text("x")
        return {name: str(tmp_path / "a-file")} if name else None
    return setup


def other_files_content(emulators, filesystem, tmp_path):
    emulators.seed_file(filesystem, "out/taken.txt", b"someone else's\n")


PARQUET_GARBAGE = b"PAR1" + b"\x00garbage" * 40 + b"PAR1"


def ex(*program: str, options: Optional[List[str]] = None) -> List[str]:
    """``exec`` over the two files ``two_inputs`` seeds, with ``program`` after ``--``."""
    return ["exec", "--input", "in/*.txt", "--output", "out", *(options or []), "--",
            *program]


def two_inputs(emulators, filesystem, tmp_path):
    emulators.seed_file(filesystem, "in/a.txt", b"a\n")
    emulators.seed_file(filesystem, "in/b.txt", b"b\n")

CASES = [
    # -- the handler spec and parameters (exit 2, before anything runs) --------------------
    Case("spec-malformed", ["run", "no_colon_here"], 2, ["no_colon_here", "package.module"]),
    Case("spec-module-missing", ["run", "handlers.nope:f"], 2, ["handlers.nope"]),
    Case("spec-import-fails", ["run", "handlers.broken_import:handler"], 2,
         ["does_not_exist_anywhere_xyz"]),
    Case("spec-raises-at-import", ["run", "handlers.broken_raise:handler"], 2,
         ["configuration missing at import time"]),
    Case("spec-syntax-error", ["run", "handlers.broken_syntax:handler"], 2,
         ["broken_syntax.py", "syntax error"]),
    Case("spec-name-missing", ["run", "handlers.good:nope"], 2, ["nope", "handlers.good"]),
    Case("spec-not-callable", ["run", "handlers.good:NOT_CALLABLE"], 2, ["NOT_CALLABLE"]),
    Case("param-unknown", ["run", GOOD, "--param", "date=1", "--param", "colour=red"], 2,
         ["colour", "accepts"]),
    Case("param-missing", ["run", GOOD], 2, ["date", "--param date=VALUE"]),
    Case("param-no-equals", ["run", GOOD, "--param", "date"], 2, ["date", "KEY=VALUE"]),
    Case("params-json-invalid", ["run", GOOD, "--params-json", "{date:"], 2, ["--params-json"]),
    Case("params-json-not-object", ["run", GOOD, "--params-json", "[1]"], 2,
         ["--params-json", "object"]),
    Case("params-file-missing", ["run", GOOD, "--params-file", "/nonexistent/p.json"], 2,
         ["/nonexistent/p.json"]),
    # -- configuration variables (exit 2) -------------------------------------------------
    Case("log-level", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_LOG_LEVEL"],
         env={"WORKER_LOG_LEVEL": "LOUD"}),
    Case("log-format", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_LOG_FORMAT", "json"],
         env={"WORKER_LOG_FORMAT": "xml"}),
    Case("timeout-not-a-number", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_TIMEOUT"],
         env={"WORKER_TIMEOUT": "soon"}),
    Case("grace-negative", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_GRACE"],
         env={"WORKER_GRACE": "-1"}),
    Case("concurrency-zero", ["run", GOOD, "--param", "date=1"], 2,
         ["WORKER_TRANSFER_CONCURRENCY", "at least 1"], env={"WORKER_TRANSFER_CONCURRENCY": "0"}),
    Case("chunk-too-small", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_LAKE_CHUNK_SIZE"],
         env={"WORKER_LAKE_CHUNK_SIZE": "10"}),
    Case("memory-fraction", ["run", GOOD, "--param", "date=1"], 2,
         ["WORKER_DUCKDB_MEMORY_FRACTION", "0.6"], env={"WORKER_DUCKDB_MEMORY_FRACTION": "2"}),
    Case("task-slots-zero", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_TASK_SLOTS"],
         env={"WORKER_TASK_SLOTS": "0"}),
    Case("cores-not-a-number", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_CORES"],
         env={"WORKER_CORES": "many"}),
    Case("vault-url-no-scheme", ["run", GOOD, "--param", "date=1"], 2,
         ["WORKER_VAULT_URL", "https://VAULT-NAME.vault.azure.net"],
         env={"WORKER_VAULT_URL": "myvault.vault.azure.net"}),
    Case("vault-url-http", bi("secret", "name=x"), 2, ["WORKER_VAULT_URL", "https"],
         env={"WORKER_VAULT_URL": "http://myvault.vault.azure.net"}),
    Case("vault-url-path", bi("secret", "name=x"), 2, ["WORKER_VAULT_URL", "no path"],
         env={"WORKER_VAULT_URL": "https://myvault.vault.azure.net/secrets/x"}),
    Case("lake-url-http", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "abfss://"],
         env={"WORKER_LAKE_URL": "http://acct.dfs.core.windows.net/fs"}),
    Case("lake-url-sas", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "SAS"],
         env={"WORKER_LAKE_URL": "https://acct.dfs.core.windows.net/fs?sig=abc"}),
    Case("lake-url-no-filesystem", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "file system"],
         env={"WORKER_LAKE_URL": "https://acct.dfs.core.windows.net"}),
    Case("lake-url-unset", bi("read", "path=x"), 2, ["WORKER_LAKE_URL"],
         env={"WORKER_LAKE_URL": None}),
    Case("lake-root-uncreatable", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "create it"],
         setup=lambda em, fs, tmp: (tmp / "a-file").write_text("x") and {
             "WORKER_LAKE_URL": (tmp / "a-file" / "lake").as_uri()}),
    Case("secrets-file-missing", bi("secret", "name=x"), 2, ["WORKER_SECRETS_FILE"],
         env={"WORKER_VAULT_URL": None, "WORKER_SECRETS_FILE": "/nonexistent/s.json"}),
    Case("secrets-file-not-json", bi("secret", "name=x"), 2, ["WORKER_SECRETS_FILE", "JSON"],
         env={"WORKER_VAULT_URL": None},
         setup=lambda em, fs, tmp: (tmp / "s.json").write_text("{nope") and {
             "WORKER_SECRETS_FILE": str(tmp / "s.json")}),
    Case("secrets-file-a-list", bi("secret", "name=x"), 2, ["WORKER_SECRETS_FILE", "object"],
         env={"WORKER_VAULT_URL": None},
         setup=lambda em, fs, tmp: (tmp / "s.json").write_text("[]") and {
             "WORKER_SECRETS_FILE": str(tmp / "s.json")}),
    Case("ca-bundle-missing", bi("read", "path=x"), 2, ["REQUESTS_CA_BUNDLE", "does not exist"],
         env={"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"}),
    Case("ca-bundle-untrusted-lake", bi("read", "path=x"), 2,
         ["not trusted", "REQUESTS_CA_BUNDLE", "WORKER_LAKE_URL"], setup=other_ca),
    Case("ca-bundle-untrusted-vault", bi("secret", "name=x"), 2,
         ["not trusted", "REQUESTS_CA_BUNDLE", "WORKER_VAULT_URL"], setup=other_ca),
    Case("scratch-dir-is-a-file", bi("scratch"), 2, ["WORKER_SCRATCH_DIR"],
         setup=a_file("WORKER_SCRATCH_DIR")),
    Case("result-path-unwritable", [*bi("write", "path=out/x.txt"), "--result",
                                    "/proc/nope/result.json"], 2, ["--result", "/proc/nope"]),
    Case("result-path-is-a-folder", [*bi("write", "path=out/x.txt"), "--result", "/tmp"], 2,
         ["--result", "/tmp"]),
    # -- identity, roles, things that do not exist (exit 2) -------------------------------
    Case("identity-unknown", bi("read", "path=x"), 2,
         ["99999999-0000-0000-0000-0000000000aa", "refused", "assign the user-assigned"],
         env={"AZURE_CLIENT_ID": "99999999-0000-0000-0000-0000000000aa"}),
    Case("role-missing-to-write", bi("write", "path=out/x.txt"), 2,
         ["may not write 'out/x.txt'", "Storage Blob Data Contributor"],
         env={"AZURE_CLIENT_ID": "22222222-2222-2222-2222-222222222222"}),
    Case("filesystem-missing", bi("read", "path=x"), 2,
         ["file system 'no-such-fs'", "create it or fix WORKER_LAKE_URL"],
         setup=lambda em, fs, tmp: {"WORKER_LAKE_URL": em.environment(
             filesystem="no-such-fs")["WORKER_LAKE_URL"]}),
    Case("secret-missing", bi("secret", "name=no-such-secret"), 2,
         ["secret 'no-such-secret' not found", "create it"]),
    # -- transient (exit 3) ----------------------------------------------------------------
    Case("lake-503", bi("read", "path=x"), 3, ["503", "'x'"], setup=fault("*", status=503)),
    Case("lake-500-on-write", bi("write", "path=out/x.txt"), 3, ["500", "out/x.txt"],
         setup=fault("put_blob", status=500)),
    Case("lake-429-on-rename", bi("write", "path=out/x.txt"), 3, ["429"],
         setup=fault("rename", status=429, retry_after=0.01)),
    Case("lake-connections-dropped", bi("read", "path=x"), 3, ["'x'", "retries"],
         setup=fault("*", kind="drop")),
    Case("vault-503", bi("secret", "name=x"), 3, ["secret 'x'", "503"],
         setup=fault("*", service="vault", status=503)),
    Case("imds-down", bi("read", "path=x"), 3, ["managed-identity endpoint did not answer"],
         env={"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"}),
    Case("imds-500", bi("read", "path=x"), 3, ["managed-identity endpoint failed"],
         setup=fault("*", service="identity", status=500)),
    Case("handler-retryable", bi("transient"), 3, ["503; try again"]),
    # -- bad input data (exit 4), named as lake paths ---------------------------------------
    Case("input-missing", bi("read", "path=raw/missing.csv"), 4,
         ["no such file or folder: 'raw/missing.csv'"]),
    Case("glob-matches-nothing", bi("sql", "path=raw/none/*.parquet"), 4,
         ["no files match 'raw/none/*.parquet'"]),
    Case("parquet-corrupt-sql-staged", bi("sql", "path=raw/bad/part-0.parquet"), 4,
         ["bad input data", "raw/bad/part-0.parquet"],
         setup=seeded("raw/bad/part-0.parquet", PARQUET_GARBAGE)),
    Case("parquet-corrupt-sql-streamed", bi("sql", "path=raw/bad/part-0.parquet", "stage=no"),
         4, ["bad input data", "raw/bad/part-0.parquet"],
         setup=seeded("raw/bad/part-0.parquet", PARQUET_GARBAGE)),
    Case("parquet-corrupt-read-table", bi("read_table", "path=raw/bad/part-0.parquet"), 4,
         ["bad input data", "'raw/bad/part-0.parquet'"],
         setup=seeded("raw/bad/part-0.parquet", PARQUET_GARBAGE)),
    Case("parquet-not-parquet", bi("sql", "path=raw/bad/x.parquet"), 4,
         ["bad input data", "raw/bad/x.parquet"], setup=seeded("raw/bad/x.parquet", b"id,n\n1,2\n")),
    Case("csv-not-utf8", bi("sql", "path=raw/bad/x.csv"), 4, ["bad input data", "raw/bad/x.csv"],
         setup=seeded("raw/bad/x.csv", b"id,name\n1,caf\xe9\xff\xfe\n2,ok\n")),
    Case("handler-permanent", bi("bad_data"), 4, ["row 17"]),
    # -- a bug in the handler (exit 1) -------------------------------------------------------
    Case("handler-bug", bi("bug"), 1, ["KeyError", "'missing'"]),
    Case("sql-syntax", bi("sql", "path=raw/ok.csv", "query=selec 1"), 1, ["syntax error"],
         setup=seeded("raw/ok.csv", b"id\n1\n")),
    Case("sql-unknown-column", bi("sql", "path=raw/ok.csv", "query=select nope from t"), 1,
         ["nope"], setup=seeded("raw/ok.csv", b"id\n1\n")),
    Case("handler-sys-exit-text", bi("exits", "code=giving up"), 1, ["sys.exit('giving up')"]),
    # -- legacy programs (python -m worker exec) ---------------------------------------------
    Case("exec-program-not-found", ex("no-such-program-xyz", "{input}"), 2,
         ["program 'no-such-program-xyz' not found on the PATH", "WORKER_APT_PACKAGES"],
         setup=two_inputs),
    Case("exec-program-not-executable", ex("/etc/passwd", "{input}"), 2,
         ["program '/etc/passwd' is not executable", "chmod +x"], setup=two_inputs),
    Case("exec-program-a-folder", ex("/tmp", "{input}"), 2, ["program '/tmp' is a folder"],
         setup=two_inputs),
    Case("exec-program-fails", ex("sh", "-c", 'echo "cannot parse $1" >&2; exit 3', "sh",
                                  "{name}"), 1,
         ["sh exited with 3 on 'in/", "its last line: cannot parse", "nothing is committed"],
         setup=two_inputs),
    Case("exec-program-own-exit-code", ex("sh", "-c", "exit 9", options=["--pass-exit-code"]),
         9, ["sh exited with 9 on 'in/"], setup=two_inputs),
    Case("exec-program-killed", ex("sh", "-c", "kill -KILL $$"), 137,
         ["sh was killed by SIGKILL on 'in/", "OOM killer"], setup=two_inputs),
    Case("exec-program-crashes", ex("sh", "-c", "kill -SEGV $$", options=["--parallel", "1"]),
         139, ["exit 139 (a program was killed by SIGSEGV)", "sh was killed by SIGSEGV on 'in/"],
         setup=two_inputs),
    Case("exec-input-missing", ["exec", "--input", "in/none/*.mp4", "--output", "out", "--",
                                "cp", "{input}", "{output_dir}"], 4,
         ["no files match 'in/none/*.mp4'"]),
    Case("exec-no-program", ["exec", "--input", "in/*.txt", "--output", "out"], 2,
         ["exec needs a program", "after --"]),
    Case("exec-placeholder-unknown", ex("cp", "{inptu}", "{output_dir}"), 2,
         ["unknown placeholder {inptu}", "{input}"], setup=two_inputs),
    Case("exec-inputs-without-once", ex("cat", "{inputs}"), 2, ["{inputs} needs --once"]),
    Case("exec-output-clash", ex("cp", "{input}", "{output_dir}/same.txt"), 2,
         ["both wrote 'same.txt'", "put {stem} or {name}"], setup=two_inputs),
    Case("exec-keep-partial-with-once", ex("cat", "{inputs}",
                                           options=["--once", "--keep-partial"]), 2,
         ["--keep-partial needs one run per input"]),
    Case("exec-parallel-zero", ex("cat", "{input}", options=["--parallel", "0"]), 2,
         ["--parallel 0 must be a whole number of at least 1"]),
    Case("exec-secret-env-malformed", ex("env", options=["--secret-env", "TOKEN"]), 2,
         ["--secret-env 'TOKEN' is not NAME=SECRET"]),
    Case("exec-secret-env-bad-name", ex("env", options=["--secret-env", "MY-TOKEN=x"]), 2,
         ["'MY-TOKEN' is not an environment variable name"]),
    Case("exec-secret-missing", ex("env", options=["--secret-env", "TOKEN=no-such-secret"]), 2,
         ["secret 'no-such-secret' not found"]),
    Case("exec-output-escapes", ["exec", "--input", "in/*.txt", "--output", "../up", "--",
                                 "cp", "{input}", "{output_dir}"], 2,
         ["--output '../up'", "escapes the lake root"]),
    # -- a commit conflict (exit 5) ----------------------------------------------------------
    Case("commit-conflict", bi("write", "path=out/taken.txt", "overwrite=no"), 5,
         ["'out/taken.txt' exists", "overwrite=True"], setup=other_files_content),
]


def test_the_table_is_at_least_fifty_cases_with_unique_ids():
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, emulators, emulator_filesystem, emulator_env):
    env = task_env(emulator_env, tmp_path, "bad-input", "t")
    env["WORKER_RETRY_TOTAL"] = "1"
    changes = dict(case.env)
    if case.setup is not None:
        changes.update(case.setup(emulators, emulator_filesystem, tmp_path) or {})
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    proc = run(case.args, env, timeout=90)
    final = last_line(proc.stderr)
    assert proc.returncode == case.code, proc.stderr[-3000:]
    assert f"exit {case.code}" in final, final
    for text in case.says:
        assert text in final, f"{text!r} not in the final line: {final}"
    bug = case.code == 1 and case.id != "handler-sys-exit-text" and not case.id.startswith(
        "exec-")  # a program's failure is not a bug in a handler
    assert ("Traceback" in proc.stderr) == bug, proc.stderr
    record = tmp_path / "bad-input" / "t" / "wd" / "result.json"
    if record.exists() and "--result" not in case.args:
        assert json.loads(record.read_text())["exit_code"] == case.code
