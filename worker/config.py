"""Configuration, parsed once from the environment into a frozen object.

Every setting is an environment variable (the way Batch passes configuration to a task:
pool or task ``environmentSettings``); the command line may override a few. The table in
docs/reference/configuration.md lists the same variables.
"""

from __future__ import annotations

import collections
import os
from types import MappingProxyType
from urllib.parse import urlparse

from .errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs every task's start-up (bench_harness.py)
    from typing import Mapping, Optional

LOG_FORMATS = ("text", "json")


#: Every setting, with its default and the variable that sets it (README's table lists them).
_SETTINGS = (
    # WORKER_LAKE_URL: the lake root (abfss://, https:// or file://); None = no lake.
    ("lake_url", None),
    # WORKER_VAULT_URL: the Key Vault (https://<vault>.vault.azure.net).
    ("vault_url", None),
    # WORKER_SECRETS_FILE: a JSON object of name -> value, the local secrets backend.
    ("secrets_file", None),
    # WORKER_CLIENT_ID, else AZURE_CLIENT_ID: the user-assigned managed identity.
    ("client_id", None),
    # WORKER_LOG_FORMAT: "text" (default) or "json".
    ("log_format", "text"),
    # WORKER_LOG_LEVEL: a logging level name (default INFO).
    ("log_level", "INFO"),
    # WORKER_SCRATCH_DIR: where scratch directories go (default: the task directory).
    ("scratch_root", None),
    # WORKER_TIMEOUT: seconds before the deadline (default: none).
    ("timeout", None),
    # WORKER_GRACE: seconds a handler gets to stop after a signal or the deadline.
    ("grace", 10.0),
    # WORKER_TRANSFER_CONCURRENCY: files moved in parallel by the lake.
    ("transfer_concurrency", 8),
    # WORKER_LAKE_CHUNK_SIZE: bytes per request when a big file moves (default 8 MiB).
    ("lake_chunk_size", 8 * 1024 * 1024),
    # WORKER_LAKE_FILE_CONCURRENCY: parallel requests within one big file (default 8).
    ("lake_file_concurrency", 8),
    # WORKER_RETRY_TOTAL: retries of the Azure SDK's own retry policies.
    ("retry_total", 5),
    # WORKER_RETRY_BACKOFF: first backoff in seconds of those retries (then doubled).
    ("retry_backoff", 1.0),
    # WORKER_TOKEN_CACHE: "on" (default): on a Batch node, tokens are shared by the node's
    # tasks through its shared folder; "off": each process asks the endpoint for its own.
    ("token_cache", True),
    # WORKER_TASK_SLOTS: tasks that share this node (the pool's taskSlotsPerNode).
    ("task_slots", 1),
    # WORKER_REQUIRED_SLOTS: slots this task takes (the task's requiredSlots).
    ("required_slots", 1),
    # WORKER_TASK_RETRIES: the task's maxTaskRetryCount (-1: unlimited), which tells the
    # harness which runs are Batch's automatic retries (default: unknown).
    ("task_retries", None),
    # WORKER_CORES: the node's cores (default: detected from CPU affinity and the cgroup).
    ("cores", None),
    # WORKER_MEMORY_MB: the node's memory in MB (default: detected, cgroup limit or RAM).
    ("memory_mb", None),
    # WORKER_DUCKDB_MEMORY_FRACTION: share of the task's memory given to DuckDB's
    # memory_limit; the rest is headroom for Python and pyarrow (default 0.6).
    ("duckdb_memory_fraction", 0.6),
    # The raw environment, for Batch variables read by other modules.
    ("environ", MappingProxyType({})),
)


class Config(collections.namedtuple("Config", [name for name, _ in _SETTINGS],
                                    defaults=[default for _, default in _SETTINGS])):
    """The worker's settings (``_SETTINGS``); build it with :meth:`from_env`, change a
    copy with ``_replace``. (A named tuple rather than a frozen dataclass: a task builds it
    on every start, and the dataclass's generated code cost 2.4 ms of it on Python 3.8.)"""

    __slots__ = ()

    def __repr__(self) -> str:  # never the environment: it may hold WORKER_SECRET_*
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self) if k != "environ")
        return f"Config({shown})"

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> Config:
        """Parse the settings from ``environ`` (default ``os.environ``)."""
        env = dict(os.environ if environ is None else environ)
        return cls(
            lake_url=_text(env, "WORKER_LAKE_URL"),
            vault_url=_vault_url(env),
            secrets_file=_text(env, "WORKER_SECRETS_FILE"),
            client_id=_text(env, "WORKER_CLIENT_ID") or _text(env, "AZURE_CLIENT_ID"),
            log_format=_choice(env, "WORKER_LOG_FORMAT", LOG_FORMATS, "text"),
            log_level=_log_level(env),
            scratch_root=_text(env, "WORKER_SCRATCH_DIR"),
            timeout=_number(env, "WORKER_TIMEOUT", None, minimum=0.0),
            grace=_number(env, "WORKER_GRACE", 10.0, minimum=0.0),
            transfer_concurrency=int(_number(env, "WORKER_TRANSFER_CONCURRENCY", 8, minimum=1)),
            lake_chunk_size=int(_number(env, "WORKER_LAKE_CHUNK_SIZE", 8 << 20, minimum=1024)),
            lake_file_concurrency=int(
                _number(env, "WORKER_LAKE_FILE_CONCURRENCY", 8, minimum=1)
            ),
            retry_total=int(_number(env, "WORKER_RETRY_TOTAL", 5, minimum=0)),
            retry_backoff=_number(env, "WORKER_RETRY_BACKOFF", 1.0, minimum=0.0),
            token_cache=_choice(env, "WORKER_TOKEN_CACHE", ("on", "off"), "on") == "on",
            task_slots=int(_number(env, "WORKER_TASK_SLOTS", 1, minimum=1)),
            required_slots=int(_number(env, "WORKER_REQUIRED_SLOTS", 1, minimum=1)),
            task_retries=_whole(env, "WORKER_TASK_RETRIES", minimum=-1),
            cores=_number(env, "WORKER_CORES", None, minimum=0.1),
            memory_mb=_number(env, "WORKER_MEMORY_MB", None, minimum=16.0),
            duckdb_memory_fraction=_fraction(env, "WORKER_DUCKDB_MEMORY_FRACTION", 0.6),
            environ=env,
        )


def _text(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name, "").strip()
    return value or None


def _vault_url(env: Mapping[str, str]) -> Optional[str]:
    """``https://VAULT.vault.azure.net`` (a port is allowed for the emulator), nothing else:
    a malformed URL is a configuration error here, not a transient failure at first use."""
    value = _text(env, "WORKER_VAULT_URL")
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.hostname or parsed.path.strip("/") \
            or parsed.query or parsed.username:
        raise ConfigError(
            f"WORKER_VAULT_URL={value!r} is not a Key Vault URL; use "
            "https://VAULT-NAME.vault.azure.net (https, no path)", code="config.vault_url")
    return value.rstrip("/")


def _choice(env: Mapping[str, str], name: str, choices: tuple, default: str) -> str:
    value = (_text(env, name) or default).lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; use one of: {', '.join(choices)}")
    return value


def _log_level(env: Mapping[str, str]) -> str:
    value = (_text(env, "WORKER_LOG_LEVEL") or "INFO").upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"WORKER_LOG_LEVEL={value!r} is not valid; use DEBUG, INFO, WARNING or ERROR"
        )
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default, minimum=0.05)
    if value > 1:
        raise ConfigError(f"{name}={value:g} must be a fraction between 0.05 and 1, e.g. 0.6")
    return value


def _number(env: Mapping[str, str], name: str, default, *, minimum: float):
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to e.g. {name}=10") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}; set it to "
                          f"{minimum:g} or more, or unset it for the default")
    return value


def _whole(env: Mapping[str, str], name: str, *, minimum: int) -> Optional[int]:
    value = _number(env, name, None, minimum=minimum)
    if value is not None and value != int(value):
        raise ConfigError(f"{name}={value:g} must be a whole number, e.g. {name}=2")
    return None if value is None else int(value)
