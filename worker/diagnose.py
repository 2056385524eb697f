"""Online checks for ``doctor``: can this configuration reach its lake and secrets?

One line per check: ``ok``, ``--`` (not configured, or not checked because an earlier check
failed) or ``BAD`` with the error and the fix. The credential is always named. Each endpoint
is first probed with one TCP connect (``worker.probe``), so an emulator that is not running
is reported in milliseconds instead of after the SDKs' retries; the SDK calls then get one
retry, and the SDKs' own warnings are silenced (the checks report their errors, once).
Tokens are requested to prove they can be had, and never printed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Iterator, List, Optional

from .errors import ConfigError, RetryableError
from .probe import IMDS_URL, Endpoint, fix_for, unreachable


def check_online(config, report) -> None:
    """Run the online checks for ``config``, writing them to ``report``."""
    from .identity import describe_credential

    config = config._replace(retry_total=min(config.retry_total, 1),
                             retry_backoff=min(config.retry_backoff, 0.5))
    _check_ca_bundles(config, report)
    report.ok(f"credential: {describe_credential(config)}")
    with _quiet_sdk_logs():
        down = _probe_endpoints(config, report)
        tokens = _check_tokens(config, report, down)
        _check_lake(config, report, down, tokens)
        _check_secrets(config, report, down, tokens)


@contextlib.contextmanager
def _quiet_sdk_logs() -> Iterator[None]:
    """The SDKs log each failed attempt (DefaultAzureCredential: ten lines per token);
    the checks report the error themselves."""
    logger = logging.getLogger("azure")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_ca_bundles(config, report) -> None:
    """A CA bundle variable naming a file that is gone breaks every HTTPS client of the
    shell (requests: "Could not find a suitable TLS CA certificate bundle"), ours too."""
    import os

    from .connection import CA_BUNDLE_VARIABLES

    for name in CA_BUNDLE_VARIABLES:
        value = config.environ.get(name, "").strip()
        if not value:
            continue
        if os.path.isfile(value):
            report.ok(f"CA bundle {name}={value}")
        else:
            report.bad(f"CA bundle {name}={value}", "no such file: HTTPS calls that read "
                       f"{name} fail", "unset " + " ".join(
                           n for n in CA_BUNDLE_VARIABLES if config.environ.get(n)) +
                       " (clients then use their own roots), or, for the emulators, start "
                       "them again and load their new env file")


# -- endpoints ----------------------------------------------------------------------------


def endpoints(config) -> List[Endpoint]:
    """The services this configuration talks to: the identity endpoint (when tokens are
    needed and it is known: on Batch, or redirected by AZURE_POD_IDENTITY_AUTHORITY_HOST, as
    the emulator does), the lake and the vault."""
    from .identity import on_batch

    found = []
    redirected = config.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip()
    needs_token = _lake_on_azure(config) or bool(config.vault_url)
    if needs_token and redirected:
        found.append(Endpoint("identity endpoint", redirected,
                              "AZURE_POD_IDENTITY_AUTHORITY_HOST"))
    elif needs_token and on_batch(config):
        found.append(Endpoint("identity endpoint", IMDS_URL, "the node's IMDS"))
    if _lake_on_azure(config):
        found.append(Endpoint("lake", config.lake_url, "WORKER_LAKE_URL"))
    if config.vault_url:
        found.append(Endpoint("Key Vault", config.vault_url, "WORKER_VAULT_URL"))
    return found


def _probe_endpoints(config, report) -> List[str]:
    """Probe every endpoint; the ``what`` of those that do not accept connections."""
    down = []
    for endpoint in endpoints(config):
        problem = unreachable(endpoint)
        if problem is not None:
            report.bad(f"{endpoint.what} {endpoint.url}", problem, fix_for(endpoint, problem))
            down.append(endpoint.what)
    return down


def _lake_on_azure(config) -> bool:
    return bool(config.lake_url) and not config.lake_url.startswith("file:")


# -- credential and tokens ----------------------------------------------------------------


def _check_tokens(config, report, down: List[str]) -> bool:
    """Request the tokens the configuration needs; True when every one was had."""
    from .identity import STORAGE_SCOPE, VAULT_SCOPE, get_credential

    scopes = []
    if _lake_on_azure(config):
        scopes.append((STORAGE_SCOPE, "storage"))
    if config.vault_url:
        scopes.append((VAULT_SCOPE, "Key Vault"))
    if not scopes:
        report.skip("tokens", "not requested: neither a lake on Azure nor a vault is configured")
        return False
    if "identity endpoint" in down:
        report.skip("tokens", "not requested: the identity endpoint does not answer (above)")
        return False
    try:
        credential = get_credential(config)
    except Exception as e:
        return report.bad("credential", _text(e), _credential_fix(config))
    for scope, what in scopes:
        if not _check_token(credential, scope, what, config, report):
            for _, rest in scopes[scopes.index((scope, what)) + 1:]:
                report.skip(f"token for {rest}", "not requested: the credential gave no token")
            return False
    return True


def _check_token(credential, scope: str, what: str, config, report) -> bool:
    try:
        token = credential.get_token(scope)
    except Exception as e:
        return report.bad(f"token for {what} ({scope})", _text(e), _credential_fix(config))
    minutes = max(0, int((token.expires_on - time.time()) / 60))
    report.ok(f"token for {what} ({scope}), valid for {minutes} min{_answered_by(credential)}")
    return True


def _answered_by(credential) -> str:
    """Which credential of DefaultAzureCredential's chain gave the token."""
    chosen = getattr(credential, "_successful_credential", None)  # azure-identity's chain
    return f", from {type(chosen).__name__}" if chosen is not None else ""


def _credential_fix(config) -> str:
    from .identity import on_batch

    if on_batch(config):
        return (
            "assign the user-assigned managed identity to the pool and set AZURE_CLIENT_ID "
            "(or WORKER_CLIENT_ID) to its client id"
        )
    return ("run 'az login', or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or "
            "start the emulators and load their environment (python -m worker emulate)")


# -- lake and secrets ---------------------------------------------------------------------


def _check_lake(config, report, down: List[str], tokens: bool) -> None:
    if not config.lake_url:
        report.skip("lake", "WORKER_LAKE_URL is not set (ctx.lake unavailable)",
                    not_configured="the lake (WORKER_LAKE_URL)")
        return
    if _lake_on_azure(config) and ("lake" in down or not tokens):
        why = "it cannot be reached" if "lake" in down else "no storage token"
        report.skip(f"lake {config.lake_url}", f"not checked: {why} (above)")
        return
    from .lake import open_store

    try:
        store = open_store(config.lake_url, config=config)
    except Exception as e:
        report.bad(f"lake {config.lake_url}", _text(e), "fix WORKER_LAKE_URL")
        return
    try:
        if _lake_answers(store, report):
            _check_namespace(store, report)
    finally:
        store.close()


def _lake_answers(store, report) -> bool:
    try:
        next(iter(store.list("", recursive=False)), None)
    except FileNotFoundError as e:
        if store.url.startswith("file:"):
            return report.ok(f"lake {store.url}: the folder does not exist yet (the first write "
                             "creates it; reads fail until then)")
        if type(e).__name__ == "FileSystemNotFound":  # from worker.lake.azure
            report.bad(f"lake {store.url}", _text(e), "create the file system or fix the URL")
            return False
        return report.ok(f"lake {store.url} answers (the root folder is created on first write)")
    except Exception as e:
        return report.bad(f"lake {store.url}", _text(e), _fix_for(e))
    return report.ok(f"lake {store.url} answers")


def _check_namespace(store, report) -> None:
    """Commits need atomic renames: a hierarchical namespace (a flat account is refused)."""
    try:
        store.check_namespace()
    except Exception as e:
        report.bad(f"lake {store.url}: hierarchical namespace", _text(e), _fix_for(e))
        return
    if type(store).__name__ == "AzureStore":
        report.ok(f"lake {store.url}: the account has a hierarchical namespace")


def _check_secrets(config, report, down: List[str], tokens: bool) -> None:
    from .secrets import open_secrets

    try:
        secrets = open_secrets(config)
    except Exception as e:
        report.bad("secrets", _text(e), _fix_for(e))
        return
    if not config.vault_url:
        report.ok(f"secrets from {secrets.source}")
        report.skip("Key Vault", "WORKER_VAULT_URL is not set",
                    not_configured="Key Vault (WORKER_VAULT_URL)")
        return
    if "Key Vault" in down or not tokens:
        why = "it cannot be reached" if "Key Vault" in down else "no Key Vault token"
        report.skip(f"secrets from {secrets.source}", f"not checked: {why} (above)")
        secrets.close()
        return
    try:  # a name that should not exist: a 404 proves the vault answers and lets us in
        secrets.get("worker-doctor-probe", default=None)
    except Exception as e:
        report.bad(f"secrets from {secrets.source}", _text(e), _fix_for(e))
        return
    finally:
        secrets.close()
    report.ok(f"secrets from {secrets.source} (the vault answers)")


def _fix_for(error: Exception) -> str:
    if isinstance(error, PermissionError):
        return "follow the advice in the message above"
    if isinstance(error, RetryableError):
        return (
            "the service did not answer: check the network rules of the storage account "
            "or vault (they must admit the pool's subnet), or retry later"
        )
    if isinstance(error, ConfigError):
        return "fix the configuration variable named above"
    return "see the error above"


def _text(error: Exception) -> str:
    """The error in a few lines: its type and first line, then, for a credential chain, one
    line per credential tried (without the SDK's troubleshooting links)."""
    lines = str(error).splitlines() or [""]
    tried: Optional[List[str]] = [
        line.strip() for line in lines[1:]
        if line.startswith("\t") and not line.strip().startswith(("Visit ", "To mitigate"))
    ]
    head = f"{type(error).__name__}: {lines[0]}"
    return "\n".join([head] + (tried or []))
