"""Data put into the emulators at start: a local folder into a file system, secrets from JSON.

``emulate --load-dir DIR`` copies every file below DIR into a file system, at the same
relative path (``DIR/in/a.csv`` becomes ``in/a.csv``), replacing a file of the same path
that ``--data`` kept. ``emulate --load-secrets FILE`` reads a JSON object of name -> value;
its secrets are seeded like the configuration's (a new version at each start).
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, Iterator, Tuple

from .config import ConfigError, json_kind
from .lake_store import Conditions, LakeError, LakeStore

_SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


def read_secrets(path: str) -> Dict[str, str]:
    """The secrets of a JSON file ``{"name": "value", ...}``; ConfigError names what is wrong."""
    with open(path, encoding="utf-8") as f:
        return parse_secrets(f.read(), path)


def parse_secrets(text: str, path: str) -> Dict[str, str]:
    """The secrets of the text of the JSON file ``path``."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise ConfigError("--load-secrets %s is not valid JSON (%s); write an object of "
                          "secret name -> string value" % (path, e)) from e
    if not isinstance(raw, dict):
        raise ConfigError("--load-secrets %s must hold a JSON object of secret name -> string "
                          "value, not %s" % (path, json_kind(raw)))
    for name, value in raw.items():
        if not _SECRET_NAME.match(name):
            raise ConfigError("--load-secrets %s: secret name %r is not valid in Key Vault; use "
                              "1-127 letters, digits and dashes" % (path, name))
        if not isinstance(value, str):
            raise ConfigError("--load-secrets %s: the value of %r must be a string, not %s"
                              % (path, name, json_kind(value)))
    return dict(raw)


def local_files(directory: str) -> Iterator[Tuple[str, str]]:
    """``(lake path, local path)`` of every file below ``directory``, sorted."""
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            local = os.path.join(root, name)
            yield os.path.relpath(local, directory).replace(os.sep, "/"), local


def load_directory(store: LakeStore, filesystem: str, directory: str) -> int:
    """Copy the files below ``directory`` into ``filesystem`` (created if missing); a count."""
    if not os.path.isdir(directory):
        raise ConfigError("--load-dir %s is not a directory; give a folder whose files "
                          "should appear in the lake" % directory)
    try:
        store.create_filesystem(filesystem, {})
    except LakeError:
        pass  # it exists already
    count = 0
    for path, local in local_files(directory):
        load_file(store, filesystem, path, local, directory)
        count += 1
    return count


def load_file(store: LakeStore, filesystem: str, path: str, local: str, directory: str) -> None:
    """One local file of ``directory`` into ``filesystem`` at ``path``, replacing it."""
    with open(local, "rb") as f:
        data = f.read()
    try:
        store.put(filesystem, path, data, Conditions(), {}, {})
    except LakeError as e:  # a file where the folder has a directory, or the reverse
        raise ConfigError("--load-dir %s: cannot load %s into %s (%s); rename it or "
                          "remove it from the lake" % (directory, path, filesystem,
                                                       e.message)) from e
