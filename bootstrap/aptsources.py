"""Third-party apt repositories: read and check their declaration (apt-sources.json).

Run by the start task with the node's Python (standard library only, Python 3.8+):

    python aptsources.py plan --keyrings DIR FILE

The declaration is a JSON object with one field, ``repositories``, a list of objects:

    name           lower-case letters, digits, ".", "_", "-"; names the files the start task
                   writes: <sources.list.d>/worker-NAME.sources and DIR/worker-NAME.gpg
    uris, suites, components, architectures
                   non-empty lists of strings, the deb822 fields of the same names
    key_url        where to fetch the signing key (http or https), or
    key_file       the key carried beside the declaration (a path relative to it);
                   when both are given the file is used
    fingerprint    the signing key's full fingerprint (40 or 64 hex digits, spaces allowed)
    packages       non-empty list: names, or {"name": ..., "environment": {...}}
    environment    optional {"NAME": "value"} set for the install of every package of the
                   repository (e.g. {"ACCEPT_EULA": "Y"}); a package's own wins

``plan`` prints the checked declaration for bootstrap/aptrepo.sh, one tab-separated line per
fact; the lines after a ``repo`` line belong to that repository:

    repo     NAME  FINGERPRINT  KEYRING  file|url  KEY      a repository
    uris     URI ...                                         its URIs, space-separated
    packages NAME ...                                        every package it installs
    install  NAME ...  [VAR=VALUE ...]                       one apt-get install, its environment
    source   LINE                                            a line of its .sources file

The .sources file's second line is a stamp: the sha256 of everything that makes the repository
(the declaration, the key file's bytes, the rendered file), so an unchanged declaration renders
an identical file and a changed one a different file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_URI = re.compile(r"^(https?://[^\s/]+|file:/)\S*$")
_KEY_URL = re.compile(r"^https?://[^\s/]+\S*$")
_SUITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+/-]*(?<!/)$")
_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$")
_ARCH = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FINGERPRINT = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})$")
#: Variables the declaration may not set: the start task sets them, or they change how apt
#: and dpkg themselves run.
_RESERVED_ENV = ("PATH", "DEBIAN_FRONTEND", "HOME")
_REPO_FIELDS = (
    "name",
    "uris",
    "suites",
    "components",
    "architectures",
    "key_url",
    "key_file",
    "fingerprint",
    "packages",
    "environment",
)
_REQUIRED = ("name", "uris", "suites", "components", "architectures", "fingerprint", "packages")
_LISTS = (("uris", _URI), ("suites", _SUITE), ("components", _COMPONENT), ("architectures", _ARCH))


class DeclarationError(Exception):
    """The declaration cannot be used; the message says where and why, in one line."""


class Repository:
    """One checked repository of the declaration, ready to be planned."""

    def __init__(self, fields: Dict[str, Any], key_path: Optional[Path], key_digest: str):
        self.fields = fields
        self.key_path = key_path
        self.key_digest = key_digest

    @property
    def name(self) -> str:
        return self.fields["name"]

    def keyring(self, keyrings: str) -> str:
        """The dedicated keyring file of this repository, in the directory ``keyrings``."""
        return "%s/worker-%s.gpg" % (keyrings.rstrip("/") or "", self.name)

    def installs(self) -> List[Tuple[List[str], List[Tuple[str, str]]]]:
        """The packages grouped by the environment their install needs, in declared order."""
        groups: Dict[Tuple[Tuple[str, str], ...], List[str]] = {}
        for package in self.fields["packages"]:
            env = dict(self.fields.get("environment", {}))
            env.update(package.get("environment", {}))
            groups.setdefault(tuple(sorted(env.items())), []).append(package["name"])
        return [(names, list(env)) for env, names in groups.items()]

    def source_lines(self, keyrings: str) -> List[str]:
        """The deb822 .sources file: a header, the stamp, then the one stanza."""
        stanza = [
            "Types: deb",
            "URIs: " + " ".join(self.fields["uris"]),
            "Suites: " + " ".join(self.fields["suites"]),
            "Components: " + " ".join(self.fields["components"]),
            "Architectures: " + " ".join(self.fields["architectures"]),
            "Signed-By: " + self.keyring(keyrings),
        ]
        stamp = hashlib.sha256()
        for part in (_canonical(self.fields), self.key_digest, "\n".join(stanza)):
            stamp.update(part.encode("utf-8") + b"\0")
        header = "# Written by batch-worker's start task from apt-sources.json (%s); "
        header += "edits are replaced."
        return [header % self.name, "# stamp " + stamp.hexdigest(), *stanza]

    def plan(self, keyrings: str) -> List[str]:
        """This repository's lines of ``plan`` output."""
        if self.key_path is not None:
            key = ("file", str(self.key_path))
        else:
            key = ("url", self.fields["key_url"])
        lines = [
            _row("repo", self.name, self.fields["fingerprint"], self.keyring(keyrings), *key),
            _row("uris", " ".join(self.fields["uris"])),
            _row("packages", " ".join(p["name"] for p in self.fields["packages"])),
        ]
        for names, env in self.installs():
            lines.append(_row("install", " ".join(names), *("%s=%s" % kv for kv in env)))
        lines.extend(_row("source", line) for line in self.source_lines(keyrings))
        return lines


def _row(*fields: str) -> str:
    return "\t".join(fields)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _no_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    seen: Dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DeclarationError("duplicate field %r" % key)
        seen[key] = value
    return seen


def _kind(value: Any) -> str:
    names = {str: "a string", list: "a list", dict: "an object", bool: "true/false"}
    return names.get(type(value), "null" if value is None else "a number")


def _strings(where: str, value: Any, pattern: "re.Pattern[str]") -> List[str]:
    if not isinstance(value, list) or not value:
        raise DeclarationError(
            "%s must be a non-empty list of strings, got %s" % (where, _kind(value))
        )
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            raise DeclarationError("%s: %s is not valid" % (where, json.dumps(item)))
    if len(set(value)) != len(value):
        raise DeclarationError("%s lists an entry twice" % where)
    return list(value)


def _environment(where: str, value: Any) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise DeclarationError(
            "%s must be an object of NAME: \"value\", got %s" % (where, _kind(value))
        )
    for name, text in value.items():
        if not _ENV_NAME.match(name):
            raise DeclarationError("%s: %r is not a variable name" % (where, name))
        if name in _RESERVED_ENV or name.startswith("LD_"):
            raise DeclarationError(
                "%s: %s is reserved: the start task sets it, or it changes how apt runs"
                % (where, name)
            )
        if not isinstance(text, str) or any(c in text for c in "\t\n\r\0"):
            raise DeclarationError("%s.%s must be a one-line string" % (where, name))
    return dict(value)


def _package(where: str, value: Any) -> Dict[str, Any]:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise DeclarationError(
            "%s must be a package name or an object, got %s" % (where, _kind(value))
        )
    unknown = sorted(set(value) - {"name", "environment"})
    if unknown:
        raise DeclarationError(
            "%s: unknown field %r (expected name, environment)" % (where, unknown[0])
        )
    name = value.get("name")
    if not isinstance(name, str) or not _PACKAGE.match(name):
        raise DeclarationError("%s: %s is not a Debian package name" % (where, json.dumps(name)))
    package: Dict[str, Any] = {"name": name}
    if "environment" in value:
        package["environment"] = _environment(where + ".environment", value["environment"])
    return package


def _fingerprint(where: str, value: Any) -> str:
    text = value.replace(" ", "").upper() if isinstance(value, str) else ""
    if not _FINGERPRINT.match(text):
        raise DeclarationError(
            "%s.fingerprint must be the key's full fingerprint (40 or 64 hex digits), got %s"
            % (where, json.dumps(value))
        )
    return text


def _key(where: str, entry: Dict[str, Any], base: Path) -> Tuple[Optional[Path], str]:
    """The key file to read (None: fetch key_url) and the digest that goes into the stamp."""
    if "key_url" not in entry and "key_file" not in entry:
        raise DeclarationError(
            "%s needs key_url or key_file (the repository's signing key)" % where
        )
    if "key_url" in entry:
        url = entry["key_url"]
        if not isinstance(url, str) or not _KEY_URL.match(url):
            raise DeclarationError(
                "%s.key_url must be an http(s) URL, got %s" % (where, json.dumps(url))
            )
    if "key_file" not in entry:
        return None, ""
    relative = entry["key_file"]
    if not isinstance(relative, str) or not relative:
        raise DeclarationError("%s.key_file must be a path, got %s" % (where, json.dumps(relative)))
    path = (base / relative).resolve()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DeclarationError(
            "%s.key_file %s cannot be read (%s)" % (where, path, exc.strerror or exc)
        ) from exc
    return path, hashlib.sha256(data).hexdigest()


def _repository(where: str, entry: Any, base: Path) -> Repository:
    if not isinstance(entry, dict):
        raise DeclarationError("%s must be an object, got %s" % (where, _kind(entry)))
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeclarationError(
            "%s.name must be lower-case letters, digits, '.', '_' or '-', got %s"
            % (where, json.dumps(name))
        )
    where = "%s (%s)" % (where, name)
    unknown = sorted(set(entry) - set(_REPO_FIELDS))
    if unknown:
        raise DeclarationError(
            "%s: unknown field %r (expected %s)" % (where, unknown[0], ", ".join(_REPO_FIELDS))
        )
    missing = [field for field in _REQUIRED if field not in entry]
    if missing:
        raise DeclarationError("%s: missing field %r" % (where, missing[0]))
    fields: Dict[str, Any] = {"name": name}
    for field, pattern in _LISTS:
        fields[field] = _strings("%s.%s" % (where, field), entry[field], pattern)
    fields["fingerprint"] = _fingerprint(where, entry["fingerprint"])
    for field in ("key_url", "key_file"):
        if field in entry:
            fields[field] = entry[field]
    key_path, key_digest = _key(where, entry, base)
    if "environment" in entry:
        fields["environment"] = _environment(where + ".environment", entry["environment"])
    packages = entry["packages"]
    if not isinstance(packages, list) or not packages:
        raise DeclarationError(
            "%s.packages must be a non-empty list, got %s" % (where, _kind(packages))
        )
    fields["packages"] = [
        _package("%s.packages[%d]" % (where, i), value) for i, value in enumerate(packages)
    ]
    return Repository(fields, key_path, key_digest)


def _unique(repositories: List[Repository]) -> None:
    names: Set[str] = set()
    owners: Dict[str, str] = {}
    for repo in repositories:
        if repo.name in names:
            raise DeclarationError("two repositories are named %r" % repo.name)
        names.add(repo.name)
        for package in repo.fields["packages"]:
            if package["name"] in owners:
                raise DeclarationError(
                    "package %s is declared twice (in %s and %s)"
                    % (package["name"], owners[package["name"]], repo.name)
                )
            owners[package["name"]] = repo.name


def parse(text: str, base: Path) -> List[Repository]:
    """Check a declaration's text; ``base`` is the folder key_file paths are relative to."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise DeclarationError("not valid JSON: %s" % exc) from exc
    if not isinstance(data, dict):
        raise DeclarationError("must be a JSON object with \"repositories\", got %s" % _kind(data))
    unknown = sorted(set(data) - {"repositories"})
    if unknown:
        raise DeclarationError("unknown field %r (expected repositories)" % unknown[0])
    entries = data.get("repositories")
    if not isinstance(entries, list):
        raise DeclarationError("\"repositories\" must be a list, got %s" % _kind(entries))
    repositories = [_repository("repositories[%d]" % i, e, base) for i, e in enumerate(entries)]
    _unique(repositories)
    return repositories


def load(path: Path) -> List[Repository]:
    """Read and check the declaration file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclarationError("cannot be read: %s" % exc) from exc
    return parse(text, path.resolve().parent)


def plan_lines(repositories: List[Repository], keyrings: str) -> List[str]:
    """The ``plan`` output for checked repositories whose keyrings live in ``keyrings``."""
    lines: List[str] = []
    for repo in repositories:
        lines.extend(repo.plan(keyrings))
    return lines


def plan(path: Path, keyrings: str) -> List[str]:
    """The ``plan`` output for the declaration at ``path``."""
    return plan_lines(load(path), keyrings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aptsources.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    plan_cmd = commands.add_parser("plan", help="check the declaration and print the plan")
    plan_cmd.add_argument("--keyrings", required=True, help="the directory of the keyrings")
    plan_cmd.add_argument("declaration", type=Path)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the plan; 0 on success, 1 (one line on stderr) when the declaration is refused."""
    args = _parser().parse_args(argv)
    try:
        lines = plan(args.declaration, args.keyrings)
    except DeclarationError as exc:
        print("%s: %s" % (args.declaration, exc), file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
