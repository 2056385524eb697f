"""Online checks for ``doctor``: can this configuration reach its lake and secrets?"""

from __future__ import annotations

from typing import IO


def check_online(config, out: IO[str]) -> bool:
    """Check each configured backend; print one line per check; True when all pass."""
    ok = True
    ok &= _check_lake(config, out)
    ok &= _check_secrets(config, out)
    return ok


def _check_lake(config, out: IO[str]) -> bool:
    if not config.lake_url:
        out.write("  --  lake: WORKER_LAKE_URL is not set (ctx.lake unavailable)\n")
        return True
    from .lake import open_store

    try:
        store = open_store(config.lake_url, config=config)
        store.list("", recursive=False)
        next(iter(store.list("", recursive=False)), None)
    except Exception as e:
        out.write(f"  BAD lake {config.lake_url}: {type(e).__name__}: {e}\n")
        return False
    out.write(f"  ok  lake {store.url} answers\n")
    return True


def _check_secrets(config, out: IO[str]) -> bool:
    from .secrets import open_secrets

    try:
        secrets = open_secrets(config)
    except Exception as e:
        out.write(f"  BAD secrets: {type(e).__name__}: {e}\n")
        return False
    out.write(f"  ok  secrets from {secrets.source}\n")
    return True
