"""``python -m worker emulate`` as a user runs it, and persistence across a restart."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, Tuple
from urllib.parse import urlsplit

import pytest
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.storage.filedatalake import DataLakeServiceClient
from support import clean_env, last_line, run_worker

from worker import envfile
from worker.emulators import CLEARED_VARIABLES

KEYS = ["WORKER_LAKE_URL", "WORKER_VAULT_URL", "AZURE_CLIENT_ID",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE",
        "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ENDPOINT",
        "AZURE_STORAGE_CONNECTION_STRING", "FSSPEC_ABFS_ACCOUNT_HOST", "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER"]


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "emulate", "--env-file", str(tmp_path / "emu.env"),
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_env(tmp_path: Path, proc: subprocess.Popen) -> Dict[str, str]:
    path = tmp_path / "emu.env"
    deadline = time.monotonic() + 30
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "emulate never became ready"
        time.sleep(0.05)
    env = envfile.parse(path.read_text())
    path.unlink()
    return env


def _stop(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> str:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return out


def _clients(env: Dict[str, str], monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"], retry_total=0)
    account, filesystem = env["WORKER_LAKE_URL"].rsplit("/", 1)
    lake = DataLakeServiceClient(account, credential=credential, retry_total=0)
    vault = SecretClient(env["WORKER_VAULT_URL"], credential, verify_challenge_resource=False,
                         retry_total=0)
    return lake.get_file_system_client(filesystem), vault


def test_emulate_prints_env_serves_and_stops_on_sigterm(tmp_path, monkeypatch):
    proc = _start(tmp_path)
    env = _wait_env(tmp_path, proc)
    assert list(env) == KEYS
    assert env["WORKER_LAKE_URL"].startswith("https://127.0.0.1:")
    assert env["WORKER_LAKE_URL"].endswith("/devstoreaccount1/data")
    fs, vault = _clients(env, monkeypatch)
    fs.get_file_client("hello.txt").upload_data(b"hi", overwrite=True)
    assert fs.get_file_client("hello.txt").download_file().readall() == b"hi"
    vault.set_secret("k", "v")
    out = _stop(proc)
    assert [line.split("=", 1)[0] for line in out.splitlines()] == KEYS


def test_emulate_with_config_and_data_survives_restart(tmp_path, monkeypatch):
    config = tmp_path / "emu.json"
    config.write_text(json.dumps({
        "account": "myacct", "filesystems": ["raw", "curated"],
        "identities": [{"client_id": "my-app", "lake": [{"filesystem": "*", "access": "rw"}],
                        "secrets": {"get": ["*"], "set": ["*"]}}],
        "secrets": {"db-password": "s3cret"}}))
    data = tmp_path / "state"
    proc = _start(tmp_path, "--config", str(config), "--data", str(data))
    env = _wait_env(tmp_path, proc)
    assert env["AZURE_CLIENT_ID"] == "my-app"
    assert env["WORKER_LAKE_URL"].endswith("/myacct/raw")
    fs, vault = _clients(env, monkeypatch)
    assert vault.get_secret("db-password").value == "s3cret"
    fs.get_file_client("keep/me.txt").upload_data(b"persisted", overwrite=True)
    vault.set_secret("added", "later")
    _stop(proc, signal.SIGINT)

    proc = _start(tmp_path, "--data", str(data), "--config", str(config))
    env2 = _wait_env(tmp_path, proc)
    assert env2["REQUESTS_CA_BUNDLE"] == env["REQUESTS_CA_BUNDLE"]
    assert env2["IDENTITY_HEADER"] == env["IDENTITY_HEADER"]  # a loaded shell keeps working
    fs, vault = _clients(env2, monkeypatch)
    assert fs.get_file_client("keep/me.txt").download_file().readall() == b"persisted"
    assert [p.name for p in fs.get_paths()] == ["keep", "keep/me.txt"]
    assert vault.get_secret("added").value == "later"
    _stop(proc)


def test_bad_config_is_a_usage_error(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text('{"identities": [{"name": "no id"}]}')
    result = subprocess.run([sys.executable, "-m", "worker", "emulate", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "every identity needs a client_id" in result.stderr


def test_in_process_restart_keeps_files_and_secrets(tmp_path, monkeypatch):
    from worker.emulators import EmulatorSet
    from worker.emulators.handle import EmulatorHandle

    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with EmulatorSet(data_dir=str(tmp_path)) as first:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", first.identity_url)
        handle = EmulatorHandle(first)
        handle.service_client().get_file_client("data", "a/b.bin").upload_data(
            b"x" * 100_000, overwrite=True, metadata={"m": "1"})
        handle.secret_client().set_secret("s", "1")
    with EmulatorSet(data_dir=str(tmp_path)) as second:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", second.identity_url)
        handle = EmulatorHandle(second)
        f = handle.service_client().get_file_client("data", "a/b.bin")
        assert f.download_file().readall() == b"x" * 100_000
        assert f.get_file_properties().metadata == {"m": "1"}
        assert handle.secret_client().get_secret("s").value == "1"


# -- in-process runs of ``emulate`` (faster than a subprocess; same code path) ----------------


@contextlib.contextmanager
def _emulate(tmp_path: Path, *argv: str) -> Iterator[Dict[str, str]]:
    """Run ``emulate`` with ``argv`` in a thread; yield its environment; stop it, expect 0."""
    from worker.cli import build_parser
    from worker.emulators import cli as emulators_cli

    env_file = tmp_path / "emu.env"
    if env_file.exists():
        env_file.unlink()
    full = ["emulate", "--env-file", str(env_file), *argv]
    args = build_parser(full).parse_args(full)
    stop, codes = threading.Event(), []
    thread = threading.Thread(target=lambda: codes.append(emulators_cli.run(args, stop)))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not env_file.exists():
            assert thread.is_alive(), "emulate exited with %s" % codes
            assert time.monotonic() < deadline, "emulate never became ready"
            time.sleep(0.02)
        yield envfile.parse(env_file.read_text())
    finally:
        stop.set()
        thread.join(30)
    assert codes == [0]


def _emulate_once(*argv: str) -> int:
    """``emulate argv`` told to stop as soon as it serves: bad input exits 2 before that,
    and input wrongly accepted returns 0 here instead of serving forever."""
    from worker.cli import build_parser
    from worker.emulators import cli as emulators_cli

    full = ["emulate", "--quiet", *argv]
    stop = threading.Event()
    stop.set()
    return emulators_cli.run(build_parser(full).parse_args(full), stop)


def _port(url: str) -> int:
    return int(urlsplit(url).netloc.rsplit(":", 1)[1])


def _ports(env: Dict[str, str]) -> Tuple[int, int, int]:
    return (_port(env["WORKER_LAKE_URL"]), _port(env["WORKER_VAULT_URL"]),
            _port(env["AZURE_POD_IDENTITY_AUTHORITY_HOST"]))


def test_one_log_line_per_request_without_the_query(tmp_path, monkeypatch, capsys):
    with _emulate(tmp_path) as env:
        fs, _ = _clients(env, monkeypatch)
        fs.get_file_client("logged.txt").upload_data(b"hi", overwrite=True)
        netloc = urlsplit(env["WORKER_LAKE_URL"]).netloc
        conn = http.client.HTTPSConnection(netloc, context=ssl.create_default_context(
            cafile=env["REQUESTS_CA_BUNDLE"]), timeout=10)
        conn.request("GET", "/devstoreaccount1/data/logged.txt?sig=SECRET-SIGNATURE")
        assert conn.getresponse().status == 401
        conn.close()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "/devstoreaccount1/data/logged.txt" in line]
    assert len(lines) == 4, err  # create, append, flush, then the unauthenticated read
    assert re.search(r"Z lake +PUT +/devstoreaccount1/data/logged\.txt create 201 [\d.]+ ms$",
                     lines[0]), lines[0]
    assert re.search(r" GET +/devstoreaccount1/data/logged\.txt read 401 [\d.]+ ms$", lines[-1])
    assert "SECRET-SIGNATURE" not in err
    # the env file's IDENTITY_ENDPOINT: azure-identity speaks App Service's protocol
    assert re.search(r"identity +GET +/msi/token token 200 ", err)


def test_quiet_logs_no_requests(tmp_path, monkeypatch, capsys):
    with _emulate(tmp_path, "--quiet") as env:
        fs, _ = _clients(env, monkeypatch)
        fs.get_file_client("quiet.txt").upload_data(b"hi", overwrite=True)
    assert "quiet.txt" not in capsys.readouterr().err


def test_ports_are_kept_under_data_and_a_taken_port_falls_back(tmp_path, monkeypatch, capsys):
    data = tmp_path / "state"
    with _emulate(tmp_path, "--data", str(data), "--quiet") as env:
        first = _ports(env)
    assert json.loads((data / "ports.json").read_text()) == dict(
        zip(("lake", "vault", "identity"), first))
    with _emulate(tmp_path, "--data", str(data), "--quiet") as env:
        assert _ports(env) == first  # the same URLs after a restart
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        taken.bind(("127.0.0.1", first[0]))
        taken.listen()
        capsys.readouterr()
        with _emulate(tmp_path, "--data", str(data), "--quiet") as env:
            moved = _ports(env)
        assert moved[0] != first[0] and moved[1:] == first[1:]
        assert "emulate: port %d for the lake is taken; it listens on %d instead" % (
            first[0], moved[0]) in capsys.readouterr().err
    assert json.loads((data / "ports.json").read_text())["lake"] == moved[0]


def test_without_data_the_default_ports_are_tried_first(tmp_path, capsys):
    from worker.emulators.cli import DEFAULT_PORTS

    with _emulate(tmp_path, "--quiet") as env:
        ports = _ports(env)
    err = capsys.readouterr().err
    for service, default, port in zip(("lake", "vault", "identity"), DEFAULT_PORTS, ports):
        assert port == default or "port %d for the %s is taken" % (default, service) in err


def test_a_given_port_that_is_taken_is_a_usage_error(tmp_path, capsys):

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _emulate_once("--vault-port", str(port)) == 2
    assert "emulate: port %d for the vault is taken; give another port, or 0 for any free " \
        "one" % port in capsys.readouterr().err


def test_network_options_reach_the_lake(tmp_path, monkeypatch):
    with _emulate(tmp_path, "--quiet", "--link-mbps", "100", "--latency-ms", "200") as env:
        fs, _ = _clients(env, monkeypatch)
        f = fs.get_file_client("net.bin")
        f.upload_data(os.urandom(5 << 20), overwrite=True)  # 0.42 s of link time
        started = time.monotonic()
        assert len(f.download_file().readall()) == 5 << 20
        assert time.monotonic() - started >= 0.200 + 0.42 * 0.75


def test_bad_network_options_are_usage_errors(capsys):
    from worker.cli import main

    assert main(["emulate", "--link-mbps", "0"]) == 2
    assert "--link-mbps: must be more than 0" in capsys.readouterr().err
    assert main(["emulate", "--latency-ms", "-5"]) == 2
    assert "--latency-ms: must be 0 or more" in capsys.readouterr().err


def test_help_documents_the_fault_file_and_the_network_model(capsys):
    from worker.cli import main
    from worker.emulators import faults, lake, vault
    from worker.emulators.batch import app, arm

    assert main(["emulate", "--help"]) == 0
    out = capsys.readouterr().out
    for key in ("service", "operation", "kind", "status", "code", "retry_after", "delay",
                "times", "probability", "truncate", "drop", "latency", "lost", "late",
                "headers", "retry-after-ms", "item"):
        assert re.search(r"\b%s\b" % key, out), key
    assert all(re.search(r"\b%s\b" % name, out) for name in faults.SERVICES if name != "*")
    unwrapped = " ".join(out.split())  # the operation lists are wrapped at hyphens too
    assert all(op in unwrapped for op in list(lake.OPERATIONS) + list(vault.OPERATIONS)
               + list(app.OPERATIONS) + list(arm.OPERATIONS))
    for option in ("--link-mbps", "--latency-ms", "--load-dir", "--load-secrets", "--quiet",
                   "--fault-seed", "10014/10015/10016", "examples:", "--flat-namespace"):
        assert option in out


@pytest.mark.parametrize("rules, message", [
    ('[{"service": "lake", "stauts": 503}]', "fault rule 1 has unknown key 'stauts'; the keys "
     "are service, operation, kind, status, code, retry_after, delay, times, probability, "
     "headers"),
    ('[{"kind": "status", "headers": {"retry-after-ms": 250}}]', "fault rule 1: headers must "
     "be an object of header names to strings"),
    ('[{"kind": "status", "retry_after": -1}]', "fault rule 1: retry_after must be zero or "
     "more seconds, or a string"),
    ('[{"kind": "drop"}, {"service": "lakes"}]', "fault rule 2: service must be one of *, "
     "lake, vault, identity, batch, arm, not 'lakes'"),
    ('{"service": "lake"}', "the fault rules must be a JSON list of objects, not an object"),
    ('[{"times": 0}]', "fault rule 1: times must be a positive whole number or null"),
    ("[{]", "is not valid JSON"),
])
def test_a_bad_fault_file_names_the_rule(tmp_path, capsys, rules, message):

    faults = tmp_path / "faults.json"
    faults.write_text(rules)
    assert _emulate_once("--faults", str(faults)) == 2
    err = capsys.readouterr().err
    assert err.startswith("emulate: --faults %s" % faults) and message in err, err


def test_the_old_seed_option_still_works_and_says_it_is_deprecated(tmp_path, capsys):
    faults = tmp_path / "faults.json"
    faults.write_text('[{"kind": "status", "probability": 0.5, "times": null}]')
    with _emulate(tmp_path, "--quiet", "--faults", str(faults), "--seed", "7"):
        pass
    assert "emulate: --seed is deprecated; use --fault-seed" in capsys.readouterr().err


def test_load_dir_and_load_secrets_seed_the_emulators_at_start(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "lake"
    (folder / "in" / "sub").mkdir(parents=True)
    (folder / "in" / "a.csv").write_bytes(b"a,b\n1,2\n")
    (folder / "in" / "sub" / "b.txt").write_bytes(b"bee")
    (folder / "top.bin").write_bytes(b"\x00\x01")
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"db-password": "from-file", "api-key": "k"}))
    data = tmp_path / "state"
    with _emulate(tmp_path, "--quiet", "--data", str(data), "--load-dir", str(folder),
                  "--load-secrets", str(secrets)) as env:
        fs, vault = _clients(env, monkeypatch)
        assert sorted(p.name for p in fs.get_paths()) == [
            "in", "in/a.csv", "in/sub", "in/sub/b.txt", "top.bin"]
        assert fs.get_file_client("in/a.csv").download_file().readall() == b"a,b\n1,2\n"
        assert vault.get_secret("db-password").value == "from-file"
        assert vault.get_secret("api-key").value == "k"
        fs.get_file_client("in/a.csv").upload_data(b"changed", overwrite=True)
    assert "emulate: loaded 3 files from %s into data" % folder in capsys.readouterr().err
    with _emulate(tmp_path, "--quiet", "--data", str(data), "--load-dir", str(folder),
                  "--filesystem", "other") as env:
        fs, _ = _clients(env, monkeypatch)
        assert env["WORKER_LAKE_URL"].endswith("/other")
        assert fs.get_file_client("in/sub/b.txt").download_file().readall() == b"bee"
        first, _ = _clients(dict(env, WORKER_LAKE_URL=env["WORKER_LAKE_URL"][:-len("other")]
                                 + "data"), monkeypatch)
        assert first.get_file_client("in/a.csv").download_file().readall() == b"changed"


@pytest.mark.parametrize("content, message", [
    ('["db"]', "must hold a JSON object of secret name -> string value, not a list"),
    ('{"db_password": "x"}', "secret name 'db_password' is not valid in Key Vault; use 1-127 "
     "letters, digits and dashes"),
    ('{"port": 5432}', "the value of 'port' must be a string, not a number"),
    ('{"a": ', "is not valid JSON"),
])
def test_a_bad_secrets_file_is_a_usage_error(tmp_path, capsys, content, message):

    secrets = tmp_path / "secrets.json"
    secrets.write_text(content)
    assert _emulate_once("--load-secrets", str(secrets)) == 2
    err = capsys.readouterr().err
    assert err.startswith("emulate: --load-secrets %s" % secrets) and message in err, err


def test_a_load_dir_that_is_not_a_folder_is_a_usage_error(tmp_path, capsys):

    assert _emulate_once("--load-dir", str(tmp_path / "missing")) == 2
    assert "emulate: --load-dir %s is not a directory" % (tmp_path / "missing") in \
        capsys.readouterr().err


def test_the_readme_example_runs_the_sample_handler_on_the_seeded_emulators(tmp_path,
                                                                             monkeypatch):
    """The example of docs/emulators.md (and of the README's step 4, in a project)."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    with _emulate(tmp_path, "--quiet", "--load-dir", str(examples / "data" / "lake"),
                  "--load-secrets", str(examples / "secrets.json")) as env:
        child = {k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES}
        child.update(env)
        result = subprocess.run(
            [sys.executable, "-m", "worker", "run", "handlers.sales:rollup", "--param",
             "date=2024-01-31", "--result", str(tmp_path / "result.json")],
            cwd=str(examples), env=child, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        fs, _ = _clients(env, monkeypatch)
        rolled = fs.get_file_client("curated/daily/2024-01-31.json").download_file().readall()
    assert json.loads(rolled)
    assert "with token ***" in result.stderr  # the seeded secret was read, and redacted


def test_the_env_file_goes_and_its_ca_bundle_stays_in_a_per_user_folder(tmp_path,
                                                                         monkeypatch):
    """A shell that loaded the env file keeps working after the stop: the bundle (the public
    roots and the emulators' CA) stays in the user's cache, and the next run reuses its CA."""
    import certifi

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with _emulate(tmp_path, "--quiet") as env:
        assert (tmp_path / "emu.env").exists()
    kept = tmp_path / "cache" / "batch-worker" / "emulators"
    bundle = env["REQUESTS_CA_BUNDLE"]
    assert bundle == str(kept / "bundle.pem")
    assert not (tmp_path / "emu.env").exists()
    text = Path(bundle).read_text()
    roots = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                       Path(certifi.where()).read_text(), re.S)
    assert len(roots) > 100 and all(root in text for root in roots)  # requests still works
    assert ssl.create_default_context(cafile=bundle).cert_store_stats()["x509_ca"] > 100
    assert oct((kept / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    old = tmp_path / "old-bundle.pem"
    old.write_text(text)
    # a task with the stopped emulators' variables is told at once what happened
    proc = run_worker("run", "handlers.lake_tasks:writes", "--result", str(tmp_path / "r.json"),
                      env=clean_env(**env))
    assert proc.returncode == 3
    assert "is the emulator running?" in last_line(proc.stderr)
    # the next run: the same bundle path, and the same CA, which the old bundle trusts
    with _emulate(tmp_path, "--quiet") as again:
        assert again["REQUESTS_CA_BUNDLE"] == bundle
        host, port = urlsplit(again["WORKER_LAKE_URL"]).netloc.rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(old))
        with socket.create_connection((host, int(port)), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_a_bundle_that_is_gone_is_a_configuration_error_naming_the_fix(tmp_path):
    from worker.connection import ca_bundle
    from worker.errors import ConfigError

    gone = str(tmp_path / "data" / "tls" / "bundle.pem")  # e.g. a --data folder removed
    with pytest.raises(ConfigError, match="REQUESTS_CA_BUNDLE=.* does not exist; point it at "
                       "a PEM file of CA certificates, or unset REQUESTS_CA_BUNDLE to use "
                       "certifi's"):
        ca_bundle({"REQUESTS_CA_BUNDLE": gone})


def _until(check, what: str, timeout: float = 20):
    """Poll ``check`` until it returns a truthy value (--watch polls every half second)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "never: %s" % what
        time.sleep(0.1)


def test_watch_applies_an_edited_secrets_file_and_loads_new_files(tmp_path, monkeypatch,
                                                                  capsys):
    from azure.core.exceptions import ResourceNotFoundError

    folder = tmp_path / "lake"
    folder.mkdir()
    (folder / "a.csv").write_text("a\n1\n")
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"kept": "k", "changed": "old-value", "dropped": "d"}))
    with _emulate(tmp_path, "--quiet", "--load-dir", str(folder), "--load-secrets",
                  str(secrets), "--watch") as env:
        fs, vault = _clients(env, monkeypatch)
        secrets.write_text(json.dumps({"kept": "k", "changed": "new-value", "added": "n"}))
        _until(lambda: _value(vault, "added") == "n", "the added secret")
        assert vault.get_secret("changed").value == "new-value"
        assert len(list(vault.list_properties_of_secret_versions("kept"))) == 1  # untouched
        with pytest.raises(ResourceNotFoundError):
            vault.get_secret("dropped")
        vault.set_secret("dropped", "again")  # purged, so its name is free
        # a half-written file changes nothing and is reported once
        err = [capsys.readouterr().err]
        secrets.write_text('{"kept": ')
        _until(lambda: err.append(capsys.readouterr().err) or "is not valid JSON" in err[-1],
               "the bad file's line")
        time.sleep(1.2)  # two more polls: no second report
        assert "is not valid JSON" not in capsys.readouterr().err
        assert vault.get_secret("kept").value == "k"
        # new and changed files below the folder reach the lake
        (folder / "in").mkdir()
        (folder / "in" / "b.csv").write_text("b\n2\n")
        _until(lambda: _read(fs, "in/b.csv") == b"b\n2\n", "the new file")
        (folder / "a.csv").write_text("a\n1\n3\n")
        _until(lambda: _read(fs, "a.csv") == b"a\n1\n3\n", "the changed file")
        (folder / "a.csv").unlink()
        time.sleep(1.2)
        assert _read(fs, "a.csv") == b"a\n1\n3\n"  # removed locally: stays in the lake
    err = "".join(err) + capsys.readouterr().err
    assert "emulate: reloaded %s: added added; changed changed; removed dropped\n" % secrets \
        in err
    assert "emulate: --load-secrets %s is not valid JSON" % secrets in err
    assert err.count("is not valid JSON") == 1
    assert "emulate: loaded 1 file from %s into data: in/b.csv\n" % folder in err
    assert "emulate: loaded 1 file from %s into data: a.csv\n" % folder in err
    for value in ("new-value", "old-value", '"n"'):
        assert value not in err


def _value(vault, name: str):
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return vault.get_secret(name).value
    except ResourceNotFoundError:
        return None


def _read(fs, path: str):
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return fs.get_file_client(path).download_file().readall()
    except ResourceNotFoundError:
        return None


def test_watch_needs_something_to_follow(capsys):
    assert _emulate_once("--watch") == 2
    assert capsys.readouterr().err == ("emulate: --watch follows --load-secrets FILE and "
                                       "--load-dir DIR; give one of them\n")


def test_a_cache_folder_that_cannot_be_used_falls_back_to_a_temporary_ca(tmp_path, monkeypatch,
                                                                         capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")  # a read-only home behaves alike: the folder cannot be made
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with _emulate(tmp_path, "--quiet") as env:
        bundle = env["REQUESTS_CA_BUNDLE"]
        fs, _ = _clients(env, monkeypatch)
        fs.get_file_client("ok.txt").upload_data(b"ok", overwrite=True)  # TLS verified
    assert not bundle.startswith(str(blocked)) and not Path(bundle).exists()
    assert ("emulate: cannot keep the CA in %s/batch-worker/emulators (Not a directory); "
            "using a temporary one, which goes when the emulators stop\n" % blocked
            ) in capsys.readouterr().err
