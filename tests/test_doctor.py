"""``python -m worker doctor`` as a user meets it: the emulators stopped, nothing configured,
a credential that gives no token. (Against running emulators and on a node: test_lake_tasks,
test_node.)"""

from __future__ import annotations

import socket

from support import clean_env, last_line, run_worker

from worker.connection import CA_BUNDLE_VARIABLES
from worker.probe import Endpoint, fix_for, unreachable


def closed_ports(n: int):
    """Ports that refuse connections: bound, then released (nothing listens on them)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def own_env(**extra: str):
    """clean_env without the machine's CA bundle variables (each would add a check line)."""
    env = clean_env(**extra)
    for name in CA_BUNDLE_VARIABLES:
        env.pop(name, None)
    return env


def stopped_emulator_env(tmp_path):
    lake, vault, identity = closed_ports(3)
    return own_env(
        WORKER_LAKE_URL=f"https://127.0.0.1:{lake}/devstoreaccount1/data",
        WORKER_VAULT_URL=f"https://127.0.0.1:{vault}",
        AZURE_CLIENT_ID="11111111-1111-1111-1111-111111111111",
        AZURE_POD_IDENTITY_AUTHORITY_HOST=f"http://127.0.0.1:{identity}",
        AZURE_CONFIG_DIR=str(tmp_path / "az"),  # no Azure CLI login to fall back on
    )


def test_a_stopped_emulator_is_named_at_once_and_nothing_waits_on_the_sdk(tmp_path):
    proc = run_worker("doctor", env=stopped_emulator_env(tmp_path), timeout=60)
    out = proc.stdout
    assert proc.returncode == 2, out + proc.stderr
    for what in ("identity endpoint http://127.0.0.1:", "lake https://127.0.0.1:",
                 "Key Vault https://127.0.0.1:"):
        assert f"  BAD {what}" in out and "refuses connections" in out
    assert out.count("fix: is the emulator running? Start it with 'python -m worker emulate") == 1
    assert out.count("fix: the same as above") == 2
    # no SDK call was made, so none could retry: tokens, lake and vault are skipped
    assert "--  tokens: not requested: the identity endpoint does not answer" in out
    assert "not checked: it cannot be reached" in out
    assert out.strip().endswith("doctor: 3 of 13 checks FAILED (see above)")
    assert proc.stderr == ""  # no SDK warnings, no tracebacks


def test_the_credential_is_named_with_nothing_configured_and_nothing_claimed(tmp_path):
    proc = run_worker("doctor", env=own_env(AZURE_CONFIG_DIR=str(tmp_path / "az")))
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "  ok  credential: DefaultAzureCredential (off Batch; managed identity part: " \
           "the default identity" in out
    assert "--  tokens: not requested: neither a lake on Azure nor a vault is configured" in out
    last = out.strip().splitlines()[-1]
    assert "all checks passed" not in last
    assert last == ("doctor: 11 checks passed; not configured, so not checked: the lake "
                    "(WORKER_LAKE_URL), Key Vault (WORKER_VAULT_URL)")


def test_on_a_node_the_managed_identity_is_named(tmp_path):
    env = clean_env(AZ_BATCH_NODE_ID="tvm-1", AZURE_CLIENT_ID="abc",
                    WORKER_LAKE_URL=f"file://{tmp_path}")
    proc = run_worker("doctor", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("  ok  credential: managed identity from the node's endpoint (client id abc, "
            "Batch node; tokens per process (no AZ_BATCH_NODE_SHARED_DIR))") in proc.stdout
    assert f"  ok  lake file://{tmp_path}" in proc.stdout
    assert proc.stdout.strip().endswith("not configured, so not checked: Key Vault "
                                        "(WORKER_VAULT_URL)")


def test_a_credential_without_a_token_is_reported_once_without_sdk_warnings(
        tmp_path, emulators, emulator_filesystem):
    """The lake answers but no credential in DefaultAzureCredential's chain gives a token
    (no identity endpoint, no service principal, no az login): one BAD line with one line per
    credential tried, the Key Vault token and the lake check skipped, no SDK warning lines."""
    env = clean_env(
        WORKER_LAKE_URL=emulators.environment(filesystem=emulator_filesystem)["WORKER_LAKE_URL"],
        WORKER_VAULT_URL=emulators.vault_url, REQUESTS_CA_BUNDLE=emulators.ca_path,
        AZURE_CONFIG_DIR=str(tmp_path / "az"))
    proc = run_worker("doctor", env=env, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert out.count("DefaultAzureCredential failed to retrieve a token") == 1
    assert "  BAD token for storage (https://storage.azure.com/.default): " in proc.stdout
    assert "        EnvironmentCredential: " in proc.stdout  # one line per credential tried
    assert "aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot" not in out
    assert "--  token for Key Vault: not requested: the credential gave no token" in proc.stdout
    assert "not checked: no storage token (above)" in proc.stdout
    assert "WARNING" not in proc.stderr


def test_probe_words_and_fixes():
    (port,) = closed_ports(1)
    local = Endpoint("lake", f"https://127.0.0.1:{port}/acct/fs", "WORKER_LAKE_URL")
    assert unreachable(local) == f"127.0.0.1:{port} refuses connections"
    assert fix_for(local, "refuses").startswith("is the emulator running?")
    remote = Endpoint("Key Vault", "https://nothing-here.invalid", "WORKER_VAULT_URL")
    problem = unreachable(remote)
    assert problem == "the host name 'nothing-here.invalid' does not resolve"
    assert fix_for(remote, problem) == "check the host name in WORKER_VAULT_URL"
    assert Endpoint("x", "http://[::1]:5", "X").loopback
    assert not Endpoint("x", "https://a.vault.azure.net", "X").loopback
    with socket.socket() as server:  # a listening port is reachable
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        open_port = server.getsockname()[1]
        assert unreachable(Endpoint("lake", f"https://127.0.0.1:{open_port}/a/b", "X")) is None


def test_a_task_against_stopped_emulators_exits_3_at_once_naming_them(tmp_path):
    """The same probe guards a task: an identity endpoint on this machine that refuses
    connections is one line and exit 3 (the SDKs would retry it around every request for
    about three minutes, then blame the credential)."""
    proc = run_worker("run", "handlers.lake_tasks:writes", "--result", str(tmp_path / "r.json"),
                      env=stopped_emulator_env(tmp_path), timeout=60)
    assert proc.returncode == 3, proc.stderr
    last = last_line(proc.stderr)
    assert "RetryableError: no token: the managed-identity endpoint http://127.0.0.1:" in last
    assert "is on this machine and refuses connections: is the emulator running?" in last
    assert "DefaultAzureCredential failed" not in proc.stderr


def test_a_ca_bundle_that_is_gone_is_named_with_the_fix(tmp_path):
    """A shell that loaded an env file whose bundle has since gone (an older emulator's, or
    a removed --data folder): every HTTPS call there fails, and the doctor says why."""
    gone = str(tmp_path / "state" / "tls" / "bundle.pem")
    kept = tmp_path / "kept.pem"
    kept.write_text("")
    proc = run_worker("doctor", env=clean_env(REQUESTS_CA_BUNDLE=gone, SSL_CERT_FILE=gone,
                                              CURL_CA_BUNDLE=str(kept),
                                              AZURE_CONFIG_DIR=str(tmp_path / "az")))
    out = proc.stdout
    assert proc.returncode == 2, out + proc.stderr
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        assert f"  BAD CA bundle {name}={gone}: no such file: HTTPS calls that read {name} " \
               "fail\n" in out
    assert f"  ok  CA bundle CURL_CA_BUNDLE={kept}\n" in out
    assert out.count("fix: unset REQUESTS_CA_BUNDLE SSL_CERT_FILE CURL_CA_BUNDLE (clients "
                     "then use their own roots), or, for the emulators, start them again and "
                     "load their new env file") == 1
    assert "fix: the same as above" in out
    assert last_line(out).startswith("doctor: 2 of ")
