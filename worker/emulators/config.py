"""Who may do what: the identities, their rights, and the data seeded at start.

The configuration is a JSON file (``--config FILE``); every key is optional::

    {
      "account": "devstoreaccount1",          # the storage account in the lake URL
      "account_key": "<base64>",              # its key, for Shared Key and SAS
      "filesystems": ["data"],                # created at start if missing
      "identities": [
        {"client_id": "11111111-1111-1111-1111-111111111111",
         "name": "worker",                    # informative only
         "lake": [{"filesystem": "*", "prefix": "", "access": "rw"}],
         "secrets": {"get": ["*"], "set": ["*"]},
         "batch": ["Azure Batch Data Contributor"]},   # roles on the Batch account
        {"client_id": "22222222-2222-2222-2222-222222222222",
         "lake": [{"filesystem": "data", "prefix": "inputs", "access": "r"}],
         "secrets": {"get": ["db-*"]}}
      ],
      "secrets": {"db-password": "s3cret"}    # seeded (a new version) at start
    }

``filesystem`` and secret names are shell-style patterns (``fnmatch``). ``prefix`` limits a
grant to a path and what lies below it ("" is the whole file system). ``access`` is ``r``
(read, list, properties) or ``rw`` (also create, append, flush, rename, delete, metadata).
Creating or deleting a file system needs ``rw`` with the empty prefix. ``secrets.get``
covers get and list; ``secrets.set`` covers set, update, delete, recover and purge. A
``lake`` grant with ``rw`` is what "Storage Blob Data Contributor" gives on Azure, ``r`` what
"Storage Blob Data Reader" gives. ``batch`` lists the Azure roles the identity holds on the
local Batch account (``emulate --batch``; ``worker.emulators.batch.roles`` lists the roles
understood); without it, "Azure Batch Account Contributor" (everything). The first identity
is also the one IMDS answers for a request without ``client_id`` (as a system-assigned
identity). Without a file, :func:`default_config` applies.

The account key signs Shared Key requests and SAS tokens (the holder of the key may do
anything in the account, as on Azure). It defaults to the well-known key of the storage
emulators (Azurite's, published with it): the emulators are loopback test doubles, and
their key is no secret.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

DEFAULT_CLIENT_ID = "11111111-1111-1111-1111-111111111111"
READER_CLIENT_ID = "22222222-2222-2222-2222-222222222222"
DEFAULT_ACCOUNT = "devstoreaccount1"
DEFAULT_FILESYSTEM = "data"
#: The storage emulators' published account key (Azurite's, for devstoreaccount1).
DEFAULT_ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr"
                       "/KBHBeksoGMGw==")


class ConfigError(ValueError):
    """The configuration file is not valid: the message names the offending key."""


class LakeGrant(NamedTuple):
    """Read or read-write access to a file-system pattern below a path prefix."""

    filesystem: str
    prefix: str
    write: bool

    def covers(self, filesystem: str, path: str) -> bool:
        if not fnmatch.fnmatchcase(filesystem, self.filesystem):
            return False
        prefix = self.prefix.strip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")


class Identity(NamedTuple):
    """One managed identity and its rights."""

    client_id: str
    name: str
    lake: Tuple[LakeGrant, ...]
    secret_get: Tuple[str, ...]
    secret_set: Tuple[str, ...]
    batch_roles: Optional[Tuple[str, ...]] = None  # None: the Batch account's default

    def may_lake(self, filesystem: str, path: str, write: bool) -> bool:
        """Whether this identity may read (or write) ``path`` in ``filesystem``."""
        return any(g.covers(filesystem, path) and (g.write or not write) for g in self.lake)

    def may_touch_filesystem(self, filesystem: str) -> bool:
        """Any grant on the file system allows reading its properties."""
        return any(fnmatch.fnmatchcase(filesystem, g.filesystem) for g in self.lake)

    def may_secret(self, name: str, write: bool) -> bool:
        patterns = self.secret_set if write else self.secret_get + self.secret_set
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)


class EmulatorConfig(NamedTuple):
    """The parsed configuration: account, file systems to create, identities, secrets."""

    account: str
    filesystems: Tuple[str, ...]
    identities: Tuple[Identity, ...]
    secrets: Tuple[Tuple[str, str], ...]
    account_key: str = DEFAULT_ACCOUNT_KEY

    def identity(self, client_id: Optional[str]) -> Optional[Identity]:
        """The identity with this client id; the first one when ``client_id`` is None."""
        if client_id is None:
            return self.identities[0] if self.identities else None
        for identity in self.identities:
            if identity.client_id.lower() == client_id.lower():
                return identity
        return None


def json_kind(value: Any) -> str:
    """How JSON calls the type of ``value``: for messages about a file's content."""
    if isinstance(value, bool):
        return "true/false"
    for kind, name in ((dict, "an object"), (list, "a list"), (str, "a string"),
                       ((int, float), "a number")):
        if isinstance(value, kind):
            return name
    return "null"


def _grant(raw: Dict[str, Any]) -> LakeGrant:
    access = raw.get("access", "r")
    if access not in ("r", "rw"):
        raise ConfigError("lake access must be 'r' or 'rw', not %r" % (access,))
    return LakeGrant(str(raw.get("filesystem", "*")), str(raw.get("prefix", "")), access == "rw")


def _identity(raw: Dict[str, Any]) -> Identity:
    if "client_id" not in raw:
        raise ConfigError("every identity needs a client_id")
    secrets = raw.get("secrets", {})
    return Identity(
        client_id=str(raw["client_id"]),
        name=str(raw.get("name", raw["client_id"])),
        lake=tuple(_grant(g) for g in raw.get("lake", [])),
        secret_get=tuple(secrets.get("get", [])),
        secret_set=tuple(secrets.get("set", [])),
        batch_roles=_batch_roles(raw["batch"]) if "batch" in raw else None,
    )


def _batch_roles(value: Any) -> Tuple[str, ...]:
    from .batch.roles import ROLES, unknown_roles

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("an identity's batch must be a list of role names, not %s"
                          % json_kind(value))
    unknown = unknown_roles(value)
    if unknown:
        raise ConfigError("an identity's batch names the role %r, which the local Batch "
                          "account does not know; its roles are %s"
                          % (unknown[0], ", ".join(ROLES)))
    return tuple(value)


def parse_config(raw: Dict[str, Any]) -> EmulatorConfig:
    """Build the configuration from parsed JSON, filling defaults for missing keys."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a JSON object")
    base = default_config()
    identities: List[Identity] = [_identity(i) for i in raw.get("identities", [])]
    return EmulatorConfig(
        account=str(raw.get("account", base.account)),
        filesystems=tuple(raw.get("filesystems", base.filesystems)),
        identities=tuple(identities) if "identities" in raw else base.identities,
        secrets=tuple(sorted(dict(raw.get("secrets", {})).items())),
        account_key=_account_key(raw.get("account_key", base.account_key)),
    )


def _account_key(value: Any) -> str:
    try:
        if not isinstance(value, str) or not base64.b64decode(value, validate=True):
            raise ValueError(value)
    except (ValueError, binascii.Error) as e:
        given = "a string that is not base64" if isinstance(value, str) else json_kind(value)
        raise ConfigError("account_key must be a base64 string (e.g. the output of openssl "
                          "rand -base64 64), not %s" % given) from e
    return value


def load_config(path: Optional[str]) -> EmulatorConfig:
    """Read ``path`` (JSON), or return the default configuration when ``path`` is None."""
    if path is None:
        return default_config()
    with open(path, encoding="utf-8") as f:
        try:
            raw = json.load(f)
        except ValueError as e:
            raise ConfigError("%s is not valid JSON: %s" % (path, e)) from e
    return parse_config(raw)


def default_config() -> EmulatorConfig:
    """One read-write identity, one read-only identity, account and file system ready."""
    writer = Identity(
        DEFAULT_CLIENT_ID, "worker", (LakeGrant("*", "", True),), ("*",), ("*",)
    )
    reader = Identity(READER_CLIENT_ID, "reader", (LakeGrant("*", "", False),), ("*",), ())
    return EmulatorConfig(DEFAULT_ACCOUNT, (DEFAULT_FILESYSTEM,), (writer, reader), ())
