"""``emulate --watch``: the secrets file and the lake folder followed while the emulators run.

Polled (every half second, from ``emulate``'s main loop): no dependency, and the same on
every file system. The secrets file is read whole at each poll (it is small): when its text
changes, the secrets whose value changed or that are new are set (a new version each), and
those no longer in it are deleted and purged; a file that does not parse (an editor's half
write) is reported once and changes nothing until it parses again. Below the lake folder,
a file that is new, or whose size or modification time changed, is loaded again; a file
removed locally stays in the lake (a handler may have written beside it).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from .config import ConfigError
from .lake_store import LakeStore
from .seeding import load_file, local_files, parse_secrets
from .vault_store import SecretStore, VaultError

_Signature = Tuple[int, int]  # (size, mtime in ns)


class SecretsFile:
    """A ``--load-secrets`` file, followed."""

    def __init__(self, path: str, store: SecretStore) -> None:
        self.path = path
        self.store = store
        self._text = self._read_text()
        self._values = self._parse(self._text)
        self._reported: Optional[str] = None

    def _read_text(self) -> Optional[str]:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None

    def _parse(self, text: Optional[str]) -> Dict[str, str]:
        try:
            return parse_secrets(text, self.path) if text is not None else {}
        except ConfigError:
            return {}  # checked at the start already; an edit since then shows at the poll

    def poll(self) -> List[str]:
        """Apply a changed file; the lines to print (names, never values)."""
        text = self._read_text()
        if text is None or text == self._text:
            return []
        try:
            values = parse_secrets(text, self.path)
        except ConfigError as e:
            if str(e) == self._reported:
                return []
            self._reported = str(e)
            return ["%s; the secrets loaded before stay until it is fixed" % e]
        self._text, self._reported = text, None
        lines = self._apply(values)
        self._values = values
        return lines

    def _apply(self, values: Dict[str, str]) -> List[str]:
        added = sorted(n for n in values if n not in self._values)
        changed = sorted(n for n in values if n in self._values and values[n] != self._values[n])
        removed = sorted(n for n in self._values if n not in values)
        problems = []
        for name in added + changed:
            try:
                self.store.set(name, values[name])
            except VaultError as e:
                problems.append("--load-secrets %s: %s not set: %s" % (self.path, name, e.message))
        for name in removed:
            try:
                self.store.delete(name)
                self.store.purge(name)
            except VaultError:
                pass  # deleted already (by a client): nothing of the file's is left
        summary = "; ".join("%s %s" % (what, ", ".join(names)) for what, names in (
            ("added", added), ("changed", changed), ("removed", removed)) if names)
        return ["reloaded %s: %s" % (self.path, summary or "no secret changed")] + problems


class LakeFolder:
    """A ``--load-dir`` folder, followed: new and changed files are loaded again."""

    def __init__(self, directory: str, store: LakeStore, filesystem: str) -> None:
        self.directory = directory
        self.store = store
        self.filesystem = filesystem
        self._seen = self._scan()

    def _scan(self) -> Dict[str, Tuple[str, _Signature]]:
        found = {}
        for path, local in local_files(self.directory):
            try:
                info = os.stat(local)
            except OSError:
                continue  # removed while we looked
            found[path] = (local, (info.st_size, info.st_mtime_ns))
        return found

    def poll(self) -> List[str]:
        """Load what is new or changed; the lines to print."""
        now = self._scan()
        fresh = sorted(p for p, (_, sig) in now.items()
                       if p not in self._seen or self._seen[p][1] != sig)
        loaded, lines = [], []
        for path in fresh:
            try:
                load_file(self.store, self.filesystem, path, now[path][0], self.directory)
                loaded.append(path)
            except (ConfigError, OSError) as e:  # tried again when the file changes
                lines.append(str(e))
        self._seen = now
        if loaded:
            lines.insert(0, "loaded %d file%s from %s into %s: %s" % (
                len(loaded), "" if len(loaded) == 1 else "s", self.directory, self.filesystem,
                ", ".join(loaded)))
        return lines
