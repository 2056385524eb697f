"""Online checks for ``doctor``: can this configuration reach its lake and secrets?

One line per check: ``ok``, ``--`` (not configured) or ``BAD`` with the exact error and
the fix. Tokens are requested to prove they can be had, and never printed.
"""

from __future__ import annotations

import time
from typing import IO

from .errors import ConfigError, RetryableError


def check_online(config, out: IO[str]) -> bool:
    """Check each configured backend; print one line per check; True when all pass."""
    ok = True
    if _uses_azure(config):
        ok &= _check_credential(config, out)
    ok &= _check_lake(config, out)
    ok &= _check_secrets(config, out)
    return ok


def _uses_azure(config) -> bool:
    lake_on_azure = bool(config.lake_url) and not config.lake_url.startswith("file:")
    return lake_on_azure or bool(config.vault_url)


def _check_credential(config, out: IO[str]) -> bool:
    from .identity import STORAGE_SCOPE, VAULT_SCOPE, describe_credential, get_credential

    out.write(f"  ok  credential: {describe_credential(config)}\n")
    try:
        credential = get_credential(config)
    except Exception as e:
        return _bad(out, "credential", e, _credential_fix(config))
    ok = True
    if config.lake_url and not config.lake_url.startswith("file:"):
        ok &= _check_token(credential, STORAGE_SCOPE, "storage", config, out)
    if config.vault_url:
        ok &= _check_token(credential, VAULT_SCOPE, "Key Vault", config, out)
    return ok


def _check_token(credential, scope: str, what: str, config, out: IO[str]) -> bool:
    try:
        token = credential.get_token(scope)
    except Exception as e:
        return _bad(out, f"token for {what} ({scope})", e, _credential_fix(config))
    minutes = max(0, int((token.expires_on - time.time()) / 60))
    out.write(f"  ok  token for {what} ({scope}), valid for {minutes} min\n")
    return True


def _credential_fix(config) -> str:
    from .identity import on_batch

    if on_batch(config):
        return (
            "assign the user-assigned managed identity to the pool and set AZURE_CLIENT_ID "
            "(or WORKER_CLIENT_ID) to its client id"
        )
    return "run 'az login', or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET"


def _check_lake(config, out: IO[str]) -> bool:
    if not config.lake_url:
        out.write("  --  lake: WORKER_LAKE_URL is not set (ctx.lake unavailable)\n")
        return True
    from .lake import open_store

    try:
        store = open_store(config.lake_url, config=config)
    except Exception as e:
        return _bad(out, f"lake {config.lake_url}", e, "fix WORKER_LAKE_URL")
    try:
        next(iter(store.list("", recursive=False)), None)
    except FileNotFoundError as e:
        if _filesystem_missing(e):
            return _bad(out, f"lake {store.url}", e, "create the file system or fix the URL")
        out.write(f"  ok  lake {store.url} answers (the root folder is created on first write)\n")
        return True
    except Exception as e:
        return _bad(out, f"lake {store.url}", e, _fix_for(e))
    finally:
        store.close()
    out.write(f"  ok  lake {store.url} answers\n")
    return True


def _filesystem_missing(error: FileNotFoundError) -> bool:
    return type(error).__name__ == "FileSystemNotFound"  # from worker.lake.azure


def _check_secrets(config, out: IO[str]) -> bool:
    from .secrets import open_secrets

    try:
        secrets = open_secrets(config)
    except Exception as e:
        return _bad(out, "secrets", e, _fix_for(e))
    if not config.vault_url:
        out.write(f"  ok  secrets from {secrets.source}\n")
        return True
    try:  # a name that should not exist: a 404 proves the vault answers and lets us in
        secrets.get("worker-doctor-probe", default=None)
    except Exception as e:
        return _bad(out, f"secrets from {secrets.source}", e, _fix_for(e))
    finally:
        secrets.close()
    out.write(f"  ok  secrets from {secrets.source} (the vault answers)\n")
    return True


def _fix_for(error: Exception) -> str:
    if isinstance(error, PermissionError):
        return "follow the advice in the message above"
    if isinstance(error, RetryableError):
        return (
            "the service did not answer: check DNS, the network rules of the storage account "
            "or vault (they must admit the pool's subnet), or retry later"
        )
    if isinstance(error, ConfigError):
        return "fix the configuration variable named above"
    return "see the error above"


def _bad(out: IO[str], what: str, error: Exception, fix: str) -> bool:
    out.write(f"  BAD {what}: {type(error).__name__}: {error}\n        fix: {fix}\n")
    return False
