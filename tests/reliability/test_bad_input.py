"""The bad-input table: each case is one mistake a user or a deployment makes, run as a real
task against the emulators (or a command line argparse refuses); each asserts the exit code
of its kind (2 configuration, 3 transient, 4 bad input data, 1 a bug in the handler, 5 a
commit conflict, 124 the deadline; for legacy programs also their own code and 128+N), and
that the one final line names the input at fault (``says``) and what to do (``fix``).
Only a bug (exit 1) may print a traceback, and no WARNING from the staging clean-up
repeats the failure before the final line."""

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
    says: List[str]  # substrings of the final line: the input at fault, in the user's words
    fix: str = ""  # a substring of the final line: what to do about it
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


def parquet_bytes() -> bytes:
    """A real parquet file of two columns and four row groups (20,000 rows, uncompressed)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    table = pa.table({"id": list(range(20000)), "name": [f"n{i}" for i in range(20000)]})
    pq.write_table(table, sink, compression="none", row_group_size=5000)
    return sink.getvalue()


def parquet_broken(how: str) -> bytes:
    """A parquet file broken ``how``: ``cut`` in half, ``tail`` without its end magic, or
    ``strings`` with the last column's pages scrambled (its footer intact)."""
    data = parquet_bytes()
    if how == "cut":
        return data[: len(data) // 2]
    if how == "tail":
        return data[:-4]
    scrambled = bytearray(data)
    start = int(len(data) * 0.97)
    for i in range(start, start + 200):
        scrambled[i] ^= 0xFF
    return bytes(scrambled[:-8]) + data[-8:]


def good_and_broken(how: str) -> Callable:
    def setup(emulators, filesystem, tmp_path):
        emulators.seed_file(filesystem, "raw/set/part-0.parquet", parquet_bytes())
        emulators.seed_file(filesystem, "raw/set/part-1.parquet", parquet_broken(how))
    return setup


def flat_account(emulators, filesystem, tmp_path):
    emulators.lake_behaviour(flat_namespace=True)


def other_account(emulators, filesystem, tmp_path):
    url = emulators.environment(filesystem=filesystem)["WORKER_LAKE_URL"]
    return {"WORKER_LAKE_URL": url.replace("/devstoreaccount1/", "/nosuchaccount/")}


def missing_root(emulators, filesystem, tmp_path):
    return {"WORKER_LAKE_URL": (tmp_path / "no-such-lake").as_uri()}


SET = "path=raw/set/*.parquet"
SUM = "query=select sum(id), max(name) from t"


def ex(*program: str, options: Optional[List[str]] = None) -> List[str]:
    """``exec`` over the two files ``two_inputs`` seeds, with ``program`` after ``--``."""
    return ["exec", "--input", "in/*.txt", "--output", "out", *(options or []), "--",
            *program]


def two_inputs(emulators, filesystem, tmp_path):
    emulators.seed_file(filesystem, "in/a.txt", b"a\n")
    emulators.seed_file(filesystem, "in/b.txt", b"b\n")

CASES = [
    # -- the handler spec and parameters (exit 2, before anything runs) --------------------
    Case("spec-malformed", ["run", "no_colon_here"], 2, ["no_colon_here", "package.module"],
         fix="expected 'package.module:function'"),
    Case("spec-module-missing", ["run", "handlers.nope:f"], 2, ["handlers.nope"],
         fix="run from the folder that contains it, or set PYTHONPATH"),
    Case("spec-import-fails", ["run", "handlers.broken_import:handler"], 2,
         ["does_not_exist_anywhere_xyz"], fix="add it to the project's requirements"),
    Case("spec-raises-at-import", ["run", "handlers.broken_raise:handler"], 2,
         ["configuration missing at import time"],
         fix="python -c 'import handlers.broken_raise' shows the traceback"),
    Case("spec-syntax-error", ["run", "handlers.broken_syntax:handler"], 2,
         ["broken_syntax.py", "syntax error"], fix="fix the code there"),
    Case("spec-name-missing", ["run", "handlers.good:nope"], 2, ["nope", "handlers.good"],
         fix="did you mean"),
    Case("spec-not-callable", ["run", "handlers.good:NOT_CALLABLE"], 2, ["NOT_CALLABLE"],
         fix="name a function"),
    Case("param-unknown", ["run", GOOD, "--param", "date=1", "--param", "colour=red"], 2,
         ["colour", "accepts"], fix="it accepts: 'date', 'region'"),
    Case("param-missing", ["run", GOOD], 2, ["date", "--param date=VALUE"],
         fix="pass them with --param date=VALUE"),
    Case("param-no-equals", ["run", GOOD, "--param", "date"], 2, ["date", "KEY=VALUE"],
         fix="write e.g. --param date="),
    Case("params-json-invalid", ["run", GOOD, "--params-json", "{date:"], 2, ["--params-json"],
         fix="give an object like"),
    Case("params-json-not-object", ["run", GOOD, "--params-json", "[1]"], 2,
         ["--params-json", "object"], fix="give an object like"),
    Case("params-file-missing", ["run", GOOD, "--params-file", "/nonexistent/p.json"], 2,
         ["/nonexistent/p.json"], fix="check the path"),
    # -- configuration variables (exit 2) -------------------------------------------------
    Case("log-level", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_LOG_LEVEL"],
         env={"WORKER_LOG_LEVEL": "LOUD"}, fix="use DEBUG, INFO, WARNING or ERROR"),
    Case("log-format", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_LOG_FORMAT", "json"],
         env={"WORKER_LOG_FORMAT": "xml"}, fix="use one of: text, json"),
    Case("timeout-not-a-number", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_TIMEOUT"],
         env={"WORKER_TIMEOUT": "soon"}, fix="set it to e.g. WORKER_TIMEOUT="),
    Case("grace-negative", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_GRACE"],
         env={"WORKER_GRACE": "-1"}, fix="set it to 0 or more"),
    Case("concurrency-zero", ["run", GOOD, "--param", "date=1"], 2,
         ["WORKER_TRANSFER_CONCURRENCY", "at least 1"], env={"WORKER_TRANSFER_CONCURRENCY": "0"},
         fix="set it to 1 or more"),
    Case("chunk-too-small", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_LAKE_CHUNK_SIZE"],
         env={"WORKER_LAKE_CHUNK_SIZE": "10"}, fix="set it to 1024 or more"),
    Case("memory-fraction", ["run", GOOD, "--param", "date=1"], 2,
         ["WORKER_DUCKDB_MEMORY_FRACTION", "0.6"], env={"WORKER_DUCKDB_MEMORY_FRACTION": "2"},
         fix="e.g. 0.6"),
    Case("task-slots-zero", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_TASK_SLOTS"],
         env={"WORKER_TASK_SLOTS": "0"}, fix="set it to 1 or more"),
    Case("cores-not-a-number", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_CORES"],
         env={"WORKER_CORES": "many"}, fix="set it to e.g. WORKER_CORES="),
    Case("vault-url-no-scheme", ["run", GOOD, "--param", "date=1"], 2,
         ["WORKER_VAULT_URL", "https://VAULT-NAME.vault.azure.net"],
         env={"WORKER_VAULT_URL": "myvault.vault.azure.net"},
         fix="use https://VAULT-NAME.vault.azure.net"),
    Case("vault-url-http", bi("secret", "name=x"), 2, ["WORKER_VAULT_URL", "https"],
         env={"WORKER_VAULT_URL": "http://myvault.vault.azure.net"},
         fix="use https://VAULT-NAME.vault.azure.net"),
    Case("vault-url-path", bi("secret", "name=x"), 2, ["WORKER_VAULT_URL", "no path"],
         env={"WORKER_VAULT_URL": "https://myvault.vault.azure.net/secrets/x"},
         fix="use https://VAULT-NAME.vault.azure.net"),
    Case("lake-url-http", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "abfss://"],
         env={"WORKER_LAKE_URL": "http://acct.dfs.core.windows.net/fs"},
         fix="use abfss://FS@ACCOUNT"),
    Case("lake-url-sas", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "SAS"],
         env={"WORKER_LAKE_URL": "https://acct.dfs.core.windows.net/fs?sig=abc"},
         fix="remove everything from the '?' on"),
    Case("lake-url-no-filesystem", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "file system"],
         env={"WORKER_LAKE_URL": "https://acct.dfs.core.windows.net"}, fix="add /FILESYSTEM"),
    Case("lake-url-unset", bi("read", "path=x"), 2, ["WORKER_LAKE_URL"],
         env={"WORKER_LAKE_URL": None}, fix="abfss://FS@ACCOUNT"),
    Case("lake-root-uncreatable", bi("read", "path=x"), 2, ["WORKER_LAKE_URL", "create it"],
         setup=lambda em, fs, tmp: (tmp / "a-file").write_text("x") and {
             "WORKER_LAKE_URL": (tmp / "a-file" / "lake").as_uri()},
         fix="point WORKER_LAKE_URL at a folder you may write"),
    Case("secrets-file-missing", bi("secret", "name=x"), 2, ["WORKER_SECRETS_FILE"],
         env={"WORKER_VAULT_URL": None, "WORKER_SECRETS_FILE": "/nonexistent/s.json"},
         fix="fix the path"),
    Case("secrets-file-not-json", bi("secret", "name=x"), 2, ["WORKER_SECRETS_FILE", "JSON"],
         env={"WORKER_VAULT_URL": None},
         setup=lambda em, fs, tmp: (tmp / "s.json").write_text("{nope") and {
             "WORKER_SECRETS_FILE": str(tmp / "s.json")}, fix="it must hold an object like"),
    Case("secrets-file-a-list", bi("secret", "name=x"), 2, ["WORKER_SECRETS_FILE", "object"],
         env={"WORKER_VAULT_URL": None},
         setup=lambda em, fs, tmp: (tmp / "s.json").write_text("[]") and {
             "WORKER_SECRETS_FILE": str(tmp / "s.json")}, fix='like {"db-password"'),
    Case("ca-bundle-missing", bi("read", "path=x"), 2, ["REQUESTS_CA_BUNDLE", "does not exist"],
         env={"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"}, fix="point it at a PEM file"),
    Case("ca-bundle-untrusted-lake", bi("read", "path=x"), 2,
         ["not trusted", "REQUESTS_CA_BUNDLE", "WORKER_LAKE_URL"], setup=other_ca,
         fix="set REQUESTS_CA_BUNDLE to a bundle with the CA"),
    Case("ca-bundle-untrusted-vault", bi("secret", "name=x"), 2,
         ["not trusted", "REQUESTS_CA_BUNDLE", "WORKER_VAULT_URL"], setup=other_ca,
         fix="set REQUESTS_CA_BUNDLE to a bundle with the CA"),
    Case("scratch-dir-is-a-file", bi("scratch"), 2, ["WORKER_SCRATCH_DIR"],
         setup=a_file("WORKER_SCRATCH_DIR"), fix="point WORKER_SCRATCH_DIR at a folder"),
    Case("result-path-unwritable", [*bi("write", "path=out/x.txt"), "--result",
                                    "/proc/nope/result.json"], 2, ["--result", "/proc/nope"],
         fix="give --result a file path"),
    Case("result-path-is-a-folder", [*bi("write", "path=out/x.txt"), "--result", "/tmp"], 2,
         ["--result", "/tmp"], fix="give --result a file path"),
    # -- identity, roles, things that do not exist (exit 2) -------------------------------
    Case("identity-unknown", bi("read", "path=x"), 2,
         ["99999999-0000-0000-0000-0000000000aa", "refused", "assign the user-assigned"],
         env={"AZURE_CLIENT_ID": "99999999-0000-0000-0000-0000000000aa"},
         fix="assign the user-assigned managed identity to the pool"),
    Case("role-missing-to-write", bi("write", "path=out/x.txt"), 2,
         ["may not write 'out/x.txt'", "Storage Blob Data Contributor"],
         env={"AZURE_CLIENT_ID": "22222222-2222-2222-2222-222222222222"},
         fix="grant it the role 'Storage Blob Data Contributor'"),
    Case("filesystem-missing", bi("read", "path=x"), 2,
         ["file system 'no-such-fs'", "create it or fix WORKER_LAKE_URL"],
         setup=lambda em, fs, tmp: {"WORKER_LAKE_URL": em.environment(
             filesystem="no-such-fs")["WORKER_LAKE_URL"]}, fix="create it or fix WORKER_LAKE_URL"),
    Case("secret-missing", bi("secret", "name=no-such-secret"), 2,
         ["secret 'no-such-secret' not found", "create it"], fix="check the name or create it"),
    # -- transient (exit 3) ----------------------------------------------------------------
    Case("lake-503", bi("read", "path=x"), 3, ["503", "'x'"], setup=fault("*", status=503),
         fix="worth a retry"),
    Case("lake-500-on-write", bi("write", "path=out/x.txt"), 3, ["500", "out/x.txt"],
         setup=fault("put_blob", status=500), fix="worth a retry"),
    Case("lake-429-on-rename", bi("write", "path=out/x.txt"), 3, ["429"],
         setup=fault("rename", status=429, retry_after=0.01), fix="worth a retry"),
    Case("lake-connections-dropped", bi("read", "path=x"), 3, ["'x'", "retries"],
         setup=fault("*", kind="drop"), fix="worth a retry"),
    # nothing listens on a port of this machine: said at once, not after minutes of retries
    # (the retries set here would outlast the test's 90 s)
    Case("lake-port-nothing-listens", bi("read", "path=x"), 3,
         ["nothing answers at 127.0.0.1:9 on this machine", "WORKER_LAKE_URL"],
         fix="is the emulator running",
         setup=lambda emulators, fs, tmp: {
             "WORKER_LAKE_URL": "https://127.0.0.1:9/%s/%s" % (emulators.account_name, fs),
             "WORKER_RETRY_TOTAL": "8", "WORKER_RETRY_BACKOFF": "5"}),
    # a lake URL with the vault's port: a 401 (the token refused), no role to grant
    Case("lake-url-at-the-vault", bi("read", "path=x"), 2,
         ["the service refused the token", "WORKER_LAKE_URL"], fix="not their vault",
         setup=lambda emulators, fs, tmp: {
             "WORKER_LAKE_URL": "%s/%s/%s" % (emulators.vault_url, emulators.account_name, fs)}),
    Case("vault-503", bi("secret", "name=x"), 3, ["secret 'x'", "503"],
         setup=fault("*", service="vault", status=503), fix="worth a retry"),
    Case("imds-down", bi("read", "path=x"), 3, [
        "managed-identity endpoint http://127.0.0.1:9 (AZURE_POD_IDENTITY_AUTHORITY_HOST) did "
        "not answer"],
         env={"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"},
         fix="check that AZURE_POD_IDENTITY_AUTHORITY_HOST names a running identity endpoint"),
    Case("imds-500", bi("read", "path=x"), 3, ["managed-identity endpoint http://127.0.0.1:",
                                               "InternalError", "after 1 retry"],
         setup=fault("*", service="identity", status=500), fix="a retry of the task may succeed"),
    Case("imds-answer-cut", bi("read", "path=x"), 3, ["managed-identity endpoint http://127.0.0.1:",
                                                     "did not answer"],
         fix="names a running identity endpoint",
         setup=fault("*", service="identity", kind="truncate")),
    Case("handler-retryable", bi("transient"), 3, ["503; try again"], fix="try again"),
    # -- bad input data (exit 4), named as lake paths ---------------------------------------
    Case("input-missing", bi("read", "path=raw/missing.csv"), 4,
         ["no such file or folder: 'raw/missing.csv'"],
         fix="check the path, or that the task writing it ran first"),
    Case("glob-matches-nothing", bi("sql", "path=raw/none/*.parquet"), 4,
         ["no files match 'raw/none/*.parquet'"], fix="check the path or pattern"),
    Case("parquet-corrupt-sql-staged", bi("sql", "path=raw/bad/part-0.parquet"), 4,
         ["bad input data", "raw/bad/part-0.parquet"],
         setup=seeded("raw/bad/part-0.parquet", PARQUET_GARBAGE),
         fix="fix or replace the file it names"),
    Case("parquet-corrupt-sql-streamed", bi("sql", "path=raw/bad/part-0.parquet", "stage=no"),
         4, ["bad input data", "raw/bad/part-0.parquet"],
         setup=seeded("raw/bad/part-0.parquet", PARQUET_GARBAGE),
         fix="fix or replace the file it names"),
    Case("parquet-corrupt-read-table", bi("read_table", "path=raw/bad/part-0.parquet"), 4,
         ["bad input data", "'raw/bad/part-0.parquet'"],
         setup=seeded("raw/bad/part-0.parquet", PARQUET_GARBAGE), fix="replace or remove the file"),
    Case("parquet-not-parquet", bi("sql", "path=raw/bad/x.parquet"), 4,
         ["bad input data", "raw/bad/x.parquet"], setup=seeded("raw/bad/x.parquet", b"id,n\n1,2\n"),
         fix="fix or replace the file it names"),
    Case("csv-not-utf8", bi("sql", "path=raw/bad/x.csv"), 4, ["bad input data", "raw/bad/x.csv"],
         setup=seeded("raw/bad/x.csv", b"id,name\n1,caf\xe9\xff\xfe\n2,ok\n"),
         fix="fix or replace the file it names"),
    Case("handler-permanent", bi("bad_data"), 4, ["row 17"], fix="retrying will not help"),
    # -- a bug in the handler (exit 1) -------------------------------------------------------
    Case("handler-bug", bi("bug"), 1, ["KeyError", "'missing'"],
         fix="fix the handler where its traceback above points"),
    Case("sql-syntax", bi("sql", "path=raw/ok.csv", "query=selec 1"), 1, ["syntax error"],
         setup=seeded("raw/ok.csv", b"id\n1\n"), fix="fix the SQL given to ctx.sql"),
    Case("sql-unknown-column", bi("sql", "path=raw/ok.csv", "query=select nope from t"), 1,
         ["nope"], setup=seeded("raw/ok.csv", b"id\n1\n"), fix="fix the SQL given to ctx.sql"),
    Case("handler-sys-exit-text", bi("exits", "code=giving up"), 1, ["sys.exit('giving up')"],
         fix="return a value instead, or raise worker.PermanentError"),
    # -- legacy programs (python -m worker exec) ---------------------------------------------
    Case("exec-program-not-found", ex("no-such-program-xyz", "{input}"), 2,
         ["program 'no-such-program-xyz' not found on the PATH", "WORKER_APT_PACKAGES"],
         setup=two_inputs, fix="install it on the node"),
    Case("exec-program-not-executable", ex("/etc/passwd", "{input}"), 2,
         ["program '/etc/passwd' is not executable", "chmod +x"], setup=two_inputs,
         fix="chmod +x it"),
    Case("exec-program-a-folder", ex("/tmp", "{input}"), 2, ["program '/tmp' is a folder"],
         setup=two_inputs, fix="name the program file itself"),
    Case("exec-program-fails", ex("sh", "-c", 'echo "cannot parse $1" >&2; exit 3', "sh",
                                  "{name}"), 1,
         ["sh exited with 3 on 'in/", "its last line: cannot parse", "nothing is committed"],
         setup=two_inputs, fix="run the program by hand on that input"),
    Case("exec-program-own-exit-code", ex("sh", "-c", "exit 9", options=["--pass-exit-code"]),
         9, ["sh exited with 9 on 'in/"], setup=two_inputs,
         fix="run the program by hand on that input"),
    Case("exec-program-killed", ex("sh", "-c", "kill -KILL $$"), 137,
         ["sh was killed by SIGKILL on 'in/", "OOM killer"], setup=two_inputs,
         fix="give the task more memory"),
    Case("exec-program-crashes", ex("sh", "-c", "kill -SEGV $$", options=["--parallel", "1"]),
         139, ["exit 139 (a program was killed by SIGSEGV)", "sh was killed by SIGSEGV on 'in/"],
         setup=two_inputs, fix="run the program by hand on that input"),
    Case("exec-input-missing", ["exec", "--input", "in/none/*.mp4", "--output", "out", "--",
                                "cp", "{input}", "{output_dir}"], 4,
         ["no files match 'in/none/*.mp4'"], fix="check the pattern"),
    Case("exec-no-program", ["exec", "--input", "in/*.txt", "--output", "out"], 2,
         ["exec needs a program", "after --"], fix="put the program and its arguments after --"),
    Case("exec-placeholder-unknown", ex("cp", "{inptu}", "{output_dir}"), 2,
         ["unknown placeholder {inptu}", "{input}"], setup=two_inputs, fix="use {input}, {name}"),
    Case("exec-inputs-without-once", ex("cat", "{inputs}"), 2, ["{inputs} needs --once"],
         fix="use {input} for one run each"),
    Case("exec-output-clash", ex("cp", "{input}", "{output_dir}/same.txt"), 2,
         ["both wrote 'same.txt'", "put {stem} or {name}"], setup=two_inputs,
         fix="put {stem} or {name} in the output's file name"),
    Case("exec-keep-partial-with-once", ex("cat", "{inputs}",
                                           options=["--once", "--keep-partial"]), 2,
         ["--keep-partial needs one run per input"], fix="drop --once or --keep-partial"),
    Case("exec-parallel-zero", ex("cat", "{input}", options=["--parallel", "0"]), 2,
         ["--parallel 0 must be a whole number of at least 1"], fix="at least 1"),
    Case("exec-secret-env-malformed", ex("env", options=["--secret-env", "TOKEN"]), 2,
         ["--secret-env 'TOKEN' is not NAME=SECRET"],
         fix="e.g. --secret-env DB_PASSWORD=db-password"),
    Case("exec-secret-env-bad-name", ex("env", options=["--secret-env", "MY-TOKEN=x"]), 2,
         ["'MY-TOKEN' is not an environment variable name"], fix="use letters, digits and _"),
    Case("exec-secret-missing", ex("env", options=["--secret-env", "TOKEN=no-such-secret"]), 2,
         ["secret 'no-such-secret' not found"], fix="check the name or create it"),
    Case("exec-output-escapes", ["exec", "--input", "in/*.txt", "--output", "../up", "--",
                                 "cp", "{input}", "{output_dir}"], 2,
         ["--output '../up'", "escapes the lake root"], fix="use a path relative to the root"),
    # -- more corrupt data, named as lake paths (exit 4) -------------------------------------
    Case("parquet-empty-read-table", bi("read_table", "path=raw/bad/empty.parquet"), 4,
         ["'raw/bad/empty.parquet'", "size is 0 bytes"], fix="replace or remove the file",
         setup=seeded("raw/bad/empty.parquet", b"")),
    Case("parquet-empty-sql-staged", bi("sql", "path=raw/bad/empty.parquet"), 4,
         ["lake:raw/bad/empty.parquet"], fix="fix or replace the file it names",
         setup=seeded("raw/bad/empty.parquet", b"")),
    Case("parquet-cut-read-table", bi("read_table", "path=raw/set/part-1.parquet"), 4,
         ["'raw/set/part-1.parquet'"], fix="replace or remove the file",
         setup=good_and_broken("cut")),
    Case("parquet-cut-sql-streamed", bi("sql", SET, "stage=no", SUM), 4,
         ["raw/set/part-1.parquet"], fix="fix or replace the file it names",
         setup=good_and_broken("cut")),
    Case("parquet-cut-sql-staged", bi("sql", SET, SUM), 4, ["lake:raw/set/part-1.parquet"],
         fix="fix or replace the file it names", setup=good_and_broken("cut")),
    Case("parquet-no-end-magic-sql-staged", bi("sql", SET, SUM), 4,
         ["lake:raw/set/part-1.parquet", "magic"], fix="fix or replace the file it names",
         setup=good_and_broken("tail")),
    Case("parquet-scrambled-read-table", bi("read_table", "path=raw/set/part-1.parquet"), 4,
         ["'raw/set/part-1.parquet'", "not readable parquet"],
         fix="replace or remove the file", setup=good_and_broken("strings")),
    Case("parquet-scrambled-read-table-glob", bi("read_table", SET), 4,
         ["'raw/set/part-1.parquet'", "not readable parquet"],
         fix="replace or remove the file", setup=good_and_broken("strings")),
    Case("parquet-scrambled-sql-glob", bi("sql", SET, SUM), 4,  # DuckDB 2.0 names the file
         ["raw/set/part-1.parquet"], fix="fix or replace the file",  # itself, 1.x does not
         setup=good_and_broken("strings")),
    Case("json-malformed", bi("sql", "path=raw/bad/x.json"), 4, ["lake:raw/bad/x.json"],
         fix="fix or replace the file it names", setup=seeded("raw/bad/x.json", b'{"a": 1,,}\n')),
    # -- the lake's account and root (exit 2) -------------------------------------------------
    Case("lake-account-wrong", bi("read", "path=x"), 2,
         ["nosuchaccount", "400 InvalidUri", "WORKER_LAKE_URL"],
         fix="check the account and file system names", setup=other_account),
    Case("lake-root-missing", bi("read", "path=in/x.csv"), 2,
         ["'in/x.csv'", "no-such-lake does not exist"], fix="fix WORKER_LAKE_URL",
         setup=missing_root),
    Case("lake-root-missing-glob", bi("sql", "path=in/*.csv"), 2,
         ["no-such-lake does not exist"], fix="fix WORKER_LAKE_URL", setup=missing_root),
    Case("lake-flat-namespace", bi("write", "path=out/x.txt"), 2,
         ["has no hierarchical namespace", "WORKER_LAKE_URL"],
         fix="point WORKER_LAKE_URL at an account with hierarchical namespace",
         setup=flat_account),
    # -- the command line (exit 2, one line, before anything runs) ----------------------------
    Case("spec-name-typo", ["run", "handlers.good:rolup", "--param", "date=1"], 2,
         ["'handlers.good:rolup' not found"], fix="did you mean 'rollup'"),
    Case("spec-file-missing", ["run", "no/such/file.py:f"], 2,
         ["'no/such/file.py' does not exist"], fix="check the path"),
    Case("cli-unknown-command", ["rnu"], 2, ["invalid choice: 'rnu'"],
         fix="see 'python -m worker --help'"),
    Case("cli-handler-missing", ["run"], 2, ["the following arguments are required: HANDLER",
                                             "usage: python -m worker run"],
         fix="see 'python -m worker run --help'"),
    Case("cli-timeout-not-a-number", ["run", GOOD, "--timeout", "soon"], 2,
         ["--timeout", "'soon'"], fix="see 'python -m worker run --help'"),
    Case("cli-unknown-option", ["run", GOOD, "--parm", "date=1"], 2,
         ["unrecognized arguments: --parm"], fix="see 'python -m worker run --help'"),
    Case("cli-log-format", ["run", GOOD, "--log-format", "xml"], 2,
         ["--log-format", "'xml'", "{text,json}"], fix="see 'python -m worker run --help'"),
    Case("cli-exec-without-output", ["exec", "--input", "in/*.txt", "--", "cat", "{input}"], 2,
         ["--output"], fix="see 'python -m worker exec --help'"),
    # -- more configuration (exit 2) ------------------------------------------------------
    Case("retry-total-negative", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_RETRY_TOTAL"],
         fix="set it to 0 or more", env={"WORKER_RETRY_TOTAL": "-1"}),
    Case("retry-backoff-not-a-number", ["run", GOOD, "--param", "date=1"], 2,
         ["WORKER_RETRY_BACKOFF='fast'"], fix="set it to e.g. WORKER_RETRY_BACKOFF=",
         env={"WORKER_RETRY_BACKOFF": "fast"}),
    Case("timeout-negative", ["run", GOOD, "--param", "date=1"], 2, ["WORKER_TIMEOUT='-5'"],
         fix="set it to 0 or more", env={"WORKER_TIMEOUT": "-5"}),
    Case("params-file-not-json", ["run", GOOD, "--params-file", "{tmp}/p.json"], 2,
         ["--params-file"], fix="give an object like",
         setup=lambda em, fs, tmp: (tmp / "p.json").write_text("{date:") and None),
    # -- time and transient failures --------------------------------------------------------
    Case("deadline", ["run", "handlers.good:sleeps", "--timeout", "0.5", "--grace", "0.5"], 124,
         ["0.5 s limit", "--timeout or WORKER_TIMEOUT"], fix="ctx.time_left()"),
    Case("lake-dropped-on-write", bi("write", "path=out/x.txt"), 3, ["'out/x.txt'"],
         fix="worth a retry", setup=fault("put_blob", kind="drop")),
    Case("vault-429", bi("secret", "name=x"), 3, ["secret 'x'", "429"], fix="worth a retry",
         setup=fault("get_secret", service="vault", status=429, retry_after=0.01)),
    # -- a commit conflict (exit 5) ----------------------------------------------------------
    Case("commit-conflict", bi("write", "path=out/taken.txt", "overwrite=no"), 5,
         ["'out/taken.txt' exists", "overwrite=True"], setup=other_files_content,
         fix="write elsewhere, delete it, or pass overwrite=True"),
]


def test_the_table_is_at_least_a_hundred_cases_with_unique_ids():
    assert len(CASES) >= 100
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
    proc = run([a.replace("{tmp}", str(tmp_path)) for a in case.args], env, timeout=90)
    final = last_line(proc.stderr)
    assert proc.returncode == case.code, proc.stderr[-3000:]
    assert f"exit {case.code}" in final, final
    for text in case.says:
        assert text in final, f"{text!r} not in the final line: {final}"
    assert case.fix and case.fix in final, f"no fix ({case.fix!r}) in the final line: {final}"
    earlier = proc.stderr.splitlines()[:-1]
    assert not [line for line in earlier if " WARNING " in line and "staging" in line], \
        "the staging clean-up repeats the failure before the final line"
    bug = case.code == 1 and case.id != "handler-sys-exit-text" and not case.id.startswith(
        "exec-")  # a program's failure is not a bug in a handler
    assert ("Traceback" in proc.stderr) == bug, proc.stderr
    record = tmp_path / "bad-input" / "t" / "wd" / "result.json"
    if record.exists() and "--result" not in case.args:
        assert json.loads(record.read_text())["exit_code"] == case.code
