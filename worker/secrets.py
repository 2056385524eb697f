"""``ctx.secrets``: secrets by name, fetched once per process and redacted everywhere.

Backends, chosen by configuration: Key Vault (``WORKER_VAULT_URL``), a JSON file
(``WORKER_SECRETS_FILE``), or the environment (``WORKER_SECRET_<NAME>``, the name upper-cased
with ``-`` and ``.`` turned into ``_``). Every value read is registered for redaction, so it
shows as ``***`` in logs, error messages and the result record; values never go to disk.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import ConfigError, SecretNotFound
from .redact import register_secret

_MISSING = object()


class Secrets:
    """Mapping-like access to secrets with a per-process cache."""

    def __init__(self, backend: "Backend") -> None:
        self._backend = backend
        self._cache: Dict[Tuple[str, Optional[str]], str] = {}
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        """Where secrets come from (for messages)."""
        return self._backend.source

    def __getitem__(self, name: str) -> str:
        return self.get(name)

    def get(self, name: str, version: Optional[str] = None, default: Any = _MISSING) -> Any:
        """The secret's value; ``default`` when given and the secret does not exist."""
        key = (name, version)
        with self._lock:
            if key not in self._cache:
                try:
                    value = self._backend.fetch(name, version)
                except SecretNotFound:
                    if default is _MISSING:
                        raise
                    return default
                register_secret(value)
                self._cache[key] = value
            return self._cache[key]

    def close(self) -> None:
        self._backend.close()


class Backend:
    """Where secret values come from: ``source`` (for messages), ``fetch`` and ``close``.
    The Key Vault backend (``worker.vault``) has the same three without subclassing, so
    the two modules import each other in one direction only."""

    source = ""

    def fetch(self, name: str, version: Optional[str]) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Release clients."""

    def not_found(self, name: str, hint: str) -> SecretNotFound:
        return SecretNotFound(f"secret {name!r} not found in {self.source}; {hint}")


class FileBackend(Backend):
    """A JSON object of name -> value (``WORKER_SECRETS_FILE``), for local runs."""

    def __init__(self, path: str) -> None:
        self.source = f"secrets file {path!r}"
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(
                f"WORKER_SECRETS_FILE={path!r} cannot be read: {e.strerror}; fix the path"
            ) from None
        except ValueError:
            raise ConfigError(
                f"WORKER_SECRETS_FILE={path!r} is not valid JSON; it must hold an object "
                'like {"db-password": "..."}'
            ) from None
        if not isinstance(values, dict):
            raise ConfigError(f"WORKER_SECRETS_FILE={path!r} must hold a JSON object of "
                              'secret name -> value, like {"db-password": "..."}')
        self._values = {str(k): str(v) for k, v in values.items()}
        for value in self._values.values():
            register_secret(value)  # the file's values are secret whether read or not

    def fetch(self, name: str, version: Optional[str]) -> str:
        if name not in self._values:
            raise self.not_found(name, "add it to the file")
        return self._values[name]


class EnvBackend(Backend):
    """``WORKER_SECRET_<NAME>`` variables: the fallback when nothing else is configured."""

    source = "the environment (WORKER_SECRET_* variables)"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    @staticmethod
    def variable(name: str) -> str:
        return "WORKER_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()

    def fetch(self, name: str, version: Optional[str]) -> str:
        variable = self.variable(name)
        if variable not in self._environ:
            raise self.not_found(name, f"set {variable} or configure WORKER_VAULT_URL")
        return self._environ[variable]


def open_secrets(config, credential_factory=None) -> Secrets:
    """The secrets backend the configuration names."""
    if config.vault_url:
        from .vault import VaultBackend  # the Key Vault SDK is imported only when used

        return Secrets(VaultBackend(config, credential_factory))
    if config.secrets_file:
        return Secrets(FileBackend(config.secrets_file))
    return Secrets(EnvBackend(config.environ))
