"""``python -m worker secrets set|get|ls|rm``: the Key Vault of ``WORKER_VAULT_URL`` from a
terminal: the emulators' (their env file loaded) or Azure's (your ``az login``).

Values never pass through argv (other users see it in ``ps``) and are never shown: ``set``
reads the value from a file or stdin (a terminal is asked without echo), and ``get`` writes
it only to a file or a pipe, never to a terminal. ``ls`` lists names, never values.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import IO, Optional

from ..errors import ConfigError, UsageError

_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")

EXAMPLES = """examples:
  python -m worker secrets set signing-key              # asks for the value, not echoed
  python -m worker secrets set signing-key --file key.txt
  printf %s "$TOKEN" | python -m worker secrets set api-token
  python -m worker secrets ls
  python -m worker secrets get signing-key --out key.txt
  python -m worker secrets get signing-key | sha256sum    # a pipe, never a terminal
  python -m worker secrets rm signing-key --purge

environment: WORKER_VAULT_URL (the vault: after `set -a; . ./.emulators.env; set +a` the
  emulators'), AZURE_CLIENT_ID or WORKER_CLIENT_ID (the identity; off Batch your Azure login
  through DefaultAzureCredential), WORKER_RETRY_TOTAL, WORKER_RETRY_BACKOFF, REQUESTS_CA_BUNDLE,
  WORKER_LOG_FORMAT, WORKER_LOG_LEVEL

exit codes: 0 done, 2 configuration (no WORKER_VAULT_URL, no such secret, no right, a bad
  name or value), 3 the vault did not answer (retry)"""

_ENVIRONMENT = EXAMPLES.split("\n\n", 1)[1]


def _action(commands, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, help=help_text, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example:\n  python -m worker secrets {example}\n\n{_ENVIRONMENT}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``secrets`` actions."""
    commands = parser.add_subparsers(dest="secrets_command", metavar="ACTION")
    commands.required = True
    put = _action(commands, "set", "set a secret (a new version) from a file or stdin",
                  "set signing-key --file key.txt")
    put.add_argument("name", metavar="NAME")
    put.add_argument("--file", metavar="FILE",
                     help="read the value from FILE, as it is (default: stdin, without its "
                     "final newline; a terminal is asked, without echo)")
    get = _action(commands, "get", "write a secret's value to a file or a pipe",
                  "get signing-key --out key.txt")
    get.add_argument("name", metavar="NAME")
    get.add_argument("--version", metavar="VERSION", help="a version (default: the latest)")
    get.add_argument("--out", metavar="FILE",
                     help="write the value to FILE, readable by you alone (default: stdout, "
                     "when it is not a terminal)")
    _action(commands, "ls", "list the secrets' names (never their values)", "ls")
    rm = _action(commands, "rm", "delete a secret (Key Vault keeps it, recoverable, unless "
                 "--purge)", "rm signing-key --purge")
    rm.add_argument("name", metavar="NAME")
    rm.add_argument("--purge", action="store_true",
                    help="also purge it, so that its name can be set again at once")


def run(args: argparse.Namespace, config, out: IO[str] = sys.stdout,
        stdin: Optional[IO[str]] = None) -> int:
    """Run one action; errors propagate as WorkerErrors (the CLI gives the exit code)."""
    if not config.vault_url:
        raise ConfigError("WORKER_VAULT_URL is not set; set it to the vault, e.g. "
                          "https://NAME.vault.azure.net, or load the emulators' env file "
                          "(set -a; . ./.emulators.env; set +a)", code="config.vault_url")
    if getattr(args, "name", None) is not None:
        _check_name(args.name)
    from ..vault import VaultBackend

    vault = VaultBackend(config)
    try:
        return _ACTIONS[args.secrets_command](vault, args, out,
                                              sys.stdin if stdin is None else stdin)
    finally:
        vault.close()


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise UsageError(f"secret name {name!r} is not one Key Vault takes: 1-127 letters, "
                         "digits and dashes", code="secrets.name")


def _set(vault, args: argparse.Namespace, out: IO[str], stdin: IO[str]) -> int:
    from ..redact import register_secret

    value = _read_value(args, stdin)
    register_secret(value)  # should any message ever carry it, the logs show ***
    version = vault.store(args.name, value)
    out.write(f"set {args.name} (version {version}) in {vault.vault_url}\n")
    return 0


def _read_value(args: argparse.Namespace, stdin: IO[str]) -> str:
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as handle:
                value = handle.read()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--file {args.file!r} cannot be read ({_reason(e)}); give a "
                             "UTF-8 text file", code="secrets.file") from None
        where = f"--file {args.file!r}"
    elif stdin.isatty():
        import getpass

        value = getpass.getpass(f"value of {args.name} (not echoed): ", stream=sys.stderr)
        where = "the terminal"
    else:
        value = stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith(
            "\n") else value
        where = "stdin"
    if not value:
        raise UsageError(f"no value for {args.name} in {where}; give it with --file FILE or "
                         "on stdin", code="secrets.empty")
    return value


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or type(error).__name__


def _get(vault, args: argparse.Namespace, out: IO[str], stdin: IO[str]) -> int:
    from ..redact import register_secret

    if not args.out and out.isatty():
        raise UsageError("secrets get writes a value to a file or a pipe, never to a "
                         "terminal; pass --out FILE, or pipe it (| cmd)",
                         code="secrets.terminal")
    value = vault.fetch(args.name, args.version)
    register_secret(value)
    if args.out:
        _write_private(args.out, value)
    else:
        out.write(value)
        out.flush()
    return 0


def _write_private(path: str, value: str) -> None:
    """The value into ``path``, mode 0600 from the start (never readable by others)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.chmod(path, 0o600)
    except OSError as e:
        raise UsageError(f"--out {path!r} cannot be written ({_reason(e)}); choose a path "
                         "you may write", code="secrets.out") from None


def _ls(vault, args: argparse.Namespace, out: IO[str], stdin: IO[str]) -> int:
    found = vault.names()
    for info in found:
        when = (time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.updated))
                if info.updated else "-")
        out.write(f"{when}  {'enabled ' if info.enabled else 'disabled'}  {info.name}\n")
    out.write(f"{len(found)} secret(s) in {vault.vault_url}\n")
    return 0


def _rm(vault, args: argparse.Namespace, out: IO[str], stdin: IO[str]) -> int:
    from ..errors import SecretNotFound

    try:
        vault.delete(args.name)
    except SecretNotFound:
        if not args.purge:
            raise
        # deleted earlier: what Key Vault kept is purged below (or named as missing)
    if args.purge:
        vault.purge(args.name)
        out.write(f"purged {args.name} in {vault.vault_url}: its name can be set again\n")
    else:
        out.write(f"deleted {args.name} in {vault.vault_url} (recoverable; --purge removes "
                  "it for good)\n")
    return 0


_ACTIONS = {"set": _set, "get": _get, "ls": _ls, "rm": _rm}
