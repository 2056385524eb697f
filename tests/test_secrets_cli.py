"""``python -m worker secrets set|get|ls|rm`` as real processes against the emulated Key
Vault, through the real Key Vault SDK: values go in on stdin, from a file or typed at a
terminal (never echoed, never in argv), come out only to a file or a pipe, and never show
in what the command prints; each failure is one line with its fix and exit 2."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from typing import Dict

import pytest
from support import clean_env, last_line, run_worker, worker_cmd

VALUE = "s3cret-value-not-to-be-seen"


def secrets(env: Dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(worker_cmd("secrets", *args), input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def test_set_from_stdin_then_get_ls_and_rm(emulators, emulator_env, emulator_environ):
    done = secrets(emulator_env, "set", "api-token", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    assert emulators.get_secret("api-token") == VALUE  # stdin's final newline dropped
    version = emulators.secret_client().get_secret("api-token").properties.version
    assert done.stdout == "set api-token (version %s) in %s\n" % (version, emulators.vault_url)
    assert VALUE not in done.stdout + done.stderr
    emulators.seed_secret("db-password", "other")

    got = secrets(emulator_env, "get", "api-token")  # stdout is a pipe here
    assert (got.returncode, got.stdout, got.stderr) == (0, VALUE, "")
    listed = secrets(emulator_env, "ls")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[-1] for line in lines[:-1]] == ["api-token", "db-password"]
    assert all(" enabled " in line for line in lines[:-1])
    assert lines[-1] == "2 secret(s) in %s" % emulators.vault_url
    assert VALUE not in listed.stdout and "other" not in listed.stdout

    gone = secrets(emulator_env, "rm", "api-token")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.startswith("deleted api-token in ") and "recoverable" in gone.stdout
    missing = secrets(emulator_env, "get", "api-token")
    assert missing.returncode == 2
    assert "secret 'api-token' not found in the Key Vault %s; check the name" % (
        emulators.vault_url) in last_line(missing.stderr)


def test_a_deleted_name_is_purged_before_it_is_set_again(emulators, emulator_env):
    emulators.seed_secret("rotated", "old")
    assert secrets(emulator_env, "rm", "rotated").returncode == 0
    again = secrets(emulator_env, "set", "rotated", stdin="new")
    assert again.returncode == 2
    assert re.search(
        r"secret 'rotated' was deleted and Key Vault keeps it \(soft delete\), so the name "
        r"cannot be set again yet in the Key Vault %s; purge it \(python -m worker secrets rm "
        r"rotated --purge\) or recover it \(409 Conflict[^)]*; x-ms-request-id [-0-9a-f]+; "
        r"client request id [-0-9a-f]+\) \(exit 2\)$" % re.escape(emulators.vault_url),
        last_line(again.stderr)), again.stderr
    purged = secrets(emulator_env, "rm", "rotated", "--purge")  # deleted already: purged
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.startswith("purged rotated in ")
    assert secrets(emulator_env, "set", "rotated", stdin="new").returncode == 0
    assert emulators.get_secret("rotated") == "new"
    nothing = secrets(emulator_env, "rm", "never-there", "--purge")
    assert nothing.returncode == 2
    assert "no deleted secret 'never-there' to purge" in last_line(nothing.stderr)


def test_a_file_is_taken_as_it_is_and_get_writes_a_private_file(emulators, emulator_env,
                                                                 tmp_path):
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    assert secrets(emulator_env, "set", "tls-key", "--file", str(pem)).returncode == 0
    assert emulators.get_secret("tls-key") == pem.read_text()
    out = tmp_path / "copy.pem"
    got = secrets(emulator_env, "get", "tls-key", "--out", str(out))
    assert (got.returncode, got.stdout) == (0, "")
    assert out.read_text() == pem.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def _on_a_terminal(env: Dict[str, str], *args: str, typed: str = "") -> str:
    """Run ``secrets ARGS`` with a pseudo-terminal as its controlling terminal, stdin,
    stdout and stderr; type ``typed`` once it asks; everything the terminal showed."""
    master, slave = pty.openpty()
    # A new session whose first tty opened becomes its controlling terminal (getpass reads
    # /dev/tty), then the command itself.
    code = ("import os, runpy, sys; os.close(os.open(os.ttyname(0), os.O_RDWR)); "
            "sys.argv = ['worker'] + sys.argv[1:]; runpy.run_module('worker', "
            "run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", code, "secrets", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    shown, sent = b"", not typed
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            shown += chunk
        if not sent and b"(not echoed): " in shown:
            os.write(master, typed.encode() + b"\n")
            sent = True
        if proc.poll() is not None and not ready:
            break
    proc.wait(30)
    os.close(master)
    return "%d %s" % (proc.returncode, shown.decode(errors="replace"))


def test_a_value_typed_at_a_terminal_is_not_echoed(emulators, emulator_env):
    shown = _on_a_terminal(emulator_env, "set", "typed-key", typed=VALUE)
    assert shown.startswith("0 "), shown
    assert "value of typed-key (not echoed): " in shown
    assert VALUE not in shown
    assert emulators.get_secret("typed-key") == VALUE


def test_get_never_writes_a_value_to_a_terminal(emulators, emulator_env):
    emulators.seed_secret("shown-nowhere", VALUE)
    shown = _on_a_terminal(emulator_env, "get", "shown-nowhere")
    assert shown.startswith("2 "), shown
    assert "secrets get writes a value to a file or a pipe, never to a terminal; pass --out " \
           "FILE, or pipe it (| cmd) (exit 2)" in shown
    assert VALUE not in shown


def test_an_identity_without_the_right_is_told_which_role(emulators, emulator_env):
    env = dict(emulator_env, AZURE_CLIENT_ID=emulators.reader_client_id)
    denied = secrets(env, "set", "not-mine", stdin="x")
    assert denied.returncode == 2
    assert re.search(
        r"client id %s may not set secret 'not-mine' in the Key Vault %s \(403 Forbidden[^)]*; "
        r"x-ms-request-id [-0-9a-f]+; client request id [-0-9a-f]+\); grant it the role 'Key "
        r"Vault Secrets Officer' on the vault \(or a 'set' access policy\) \(exit 2\)$"
        % (emulators.reader_client_id, re.escape(emulators.vault_url)),
        last_line(denied.stderr)), denied.stderr


@pytest.mark.parametrize("args, stdin, message", [
    (("set", "bad_name"), "x", "secret name 'bad_name' is not one Key Vault takes: 1-127 "
     "letters, digits and dashes (exit 2)"),
    (("set", "empty"), "\n", "no value for empty in stdin; give it with --file FILE or on "
     "stdin (exit 2)"),
    (("set", "x", "--file", "/no/such/file"), "", "--file '/no/such/file' cannot be read "
     "(No such file or directory); give a UTF-8 text file (exit 2)"),
])
def test_bad_input_is_one_line_before_any_call(emulators, emulator_env, args, stdin, message):
    proc = secrets(emulator_env, *args, stdin=stdin)
    assert proc.returncode == 2
    assert last_line(proc.stderr).endswith(message)
    assert emulators.counts("vault") == {}


def test_without_a_vault_the_fix_is_named(tmp_path):
    proc = run_worker("secrets", "ls", env=clean_env())
    assert proc.returncode == 2
    assert last_line(proc.stderr).endswith(
        "WORKER_VAULT_URL is not set; set it to the vault, e.g. https://NAME.vault.azure.net, "
        "or load the emulators' env file (set -a; . ./.emulators.env; set +a) (exit 2)")


def test_help_has_examples(capsys):
    from worker.cli import main

    assert main(["secrets", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("python -m worker secrets set signing-key --file key.txt",
                 "python -m worker secrets get signing-key | sha256sum",
                 "python -m worker secrets rm signing-key --purge", "WORKER_VAULT_URL"):
        assert text in out
    assert main(["secrets", "set", "--help"]) == 0
    assert "python -m worker secrets set signing-key --file key.txt" in capsys.readouterr().out
