"""Key Vault secrets: versions, soft delete, and the JSON bundles the service returns.

Each ``set`` adds a version (a 32-hex id) and makes it the latest. ``delete`` moves the
secret to the deleted list (soft delete, ``Recoverable+Purgeable``, 90 days), from where
it can be recovered or purged. With a directory the secrets are kept in
``DIR/vault.json``, written through on every change.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

RECOVERABLE_DAYS = 90


class VaultError(Exception):
    """A Key Vault error: status, code and message (and an inner code for 403s)."""

    def __init__(self, status: int, code: str, message: str, inner: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner


def _not_found(name: str, deleted: bool = False) -> VaultError:
    if deleted:
        return VaultError(404, "SecretNotFound", "Deleted Secret not found: %s" % name)
    return VaultError(404, "SecretNotFound", "A secret with (name/id) %s was not found in this "
                      "key vault. If you recently deleted this secret you may be able to recover "
                      "it using the correct recovery command." % name)


class SecretStore:
    """All secrets of one vault; thread-safe; optionally persisted."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path
        self.lock = threading.Lock()
        # name -> versions in creation order; each version is a plain dict
        self.secrets: Dict[str, List[Dict[str, Any]]] = {}
        self.deleted: Dict[str, Dict[str, Any]] = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            self.secrets, self.deleted = state["secrets"], state["deleted"]

    def set(self, name: str, value: str, content_type: Optional[str] = None,
            tags: Optional[Dict[str, str]] = None,
            attributes: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Add a new version and return it."""
        with self.lock:
            if name in self.deleted:
                raise VaultError(409, "Conflict", "Secret %s is currently in a deleted but "
                                 "recoverable state, and its name cannot be reused; in this "
                                 "state, the secret can only be recovered or purged." % name)
            now = int(time.time())
            version = {"version": uuid.uuid4().hex, "value": value, "contentType": content_type,
                       "tags": tags, "enabled": True, "created": now, "updated": now}
            version.update(_attributes(attributes))
            self.secrets.setdefault(name, []).append(version)
            self._save()
            return dict(version)

    def get(self, name: str, version: Optional[str] = None) -> Dict[str, Any]:
        with self.lock:
            return dict(self._find(name, version))

    def _find(self, name: str, version: Optional[str]) -> Dict[str, Any]:
        versions = self.secrets.get(name)
        if not versions:
            raise _not_found(name)
        if not version:
            return versions[-1]
        for item in versions:
            if item["version"] == version:
                return item
        raise _not_found("%s/%s" % (name, version))

    def update(self, name: str, version: Optional[str], patch: Dict[str, Any]) -> Dict[str, Any]:
        """Change content type, tags or attributes of one version (never its value)."""
        with self.lock:
            item = self._find(name, version)
            if "contentType" in patch:
                item["contentType"] = patch["contentType"]
            if "tags" in patch:
                item["tags"] = patch["tags"]
            item.update(_attributes(patch.get("attributes")))
            item["updated"] = int(time.time())
            self._save()
            return dict(item)

    def versions(self, name: str) -> List[Dict[str, Any]]:
        with self.lock:
            if name not in self.secrets:
                raise _not_found(name)
            return [dict(v) for v in self.secrets[name]]

    def names(self) -> List[Tuple[str, Dict[str, Any]]]:
        """``(name, latest version)`` for every live secret, sorted by name."""
        with self.lock:
            return [(n, dict(self.secrets[n][-1])) for n in sorted(self.secrets)]

    def delete(self, name: str) -> Dict[str, Any]:
        with self.lock:
            if name not in self.secrets:
                raise _not_found(name)
            now = int(time.time())
            record = {"versions": self.secrets.pop(name), "deletedDate": now,
                      "scheduledPurgeDate": now + RECOVERABLE_DAYS * 86400}
            self.deleted[name] = record
            self._save()
            return _deleted_view(record)

    def get_deleted(self, name: str) -> Dict[str, Any]:
        with self.lock:
            if name not in self.deleted:
                raise _not_found(name, deleted=True)
            return _deleted_view(self.deleted[name])

    def deleted_names(self) -> List[Tuple[str, Dict[str, Any]]]:
        with self.lock:
            return [(n, _deleted_view(self.deleted[n])) for n in sorted(self.deleted)]

    def purge(self, name: str) -> None:
        with self.lock:
            if self.deleted.pop(name, None) is None:
                raise _not_found(name, deleted=True)
            self._save()

    def recover(self, name: str) -> Dict[str, Any]:
        with self.lock:
            record = self.deleted.pop(name, None)
            if record is None:
                raise _not_found(name, deleted=True)
            self.secrets[name] = record["versions"]
            self._save()
            return dict(record["versions"][-1])

    def reset(self, seeds: Dict[str, str]) -> None:
        """Forget every secret, live or deleted, and hold only ``seeds`` (one version each)."""
        with self.lock:
            self.secrets, self.deleted = {}, {}
        for name, value in seeds.items():
            self.set(name, value)
        if not seeds:
            with self.lock:
                self._save()

    def _save(self) -> None:
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"secrets": self.secrets, "deleted": self.deleted}, f)
        os.replace(tmp, self.path)


def _attributes(raw: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    raw = raw or {}
    return {k: raw[k] for k in ("enabled", "nbf", "exp") if k in raw}


def _deleted_view(record: Dict[str, Any]) -> Dict[str, Any]:
    view = dict(record["versions"][-1])
    view["deletedDate"] = record["deletedDate"]
    view["scheduledPurgeDate"] = record["scheduledPurgeDate"]
    return view
