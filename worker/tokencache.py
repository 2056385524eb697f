"""Tokens shared by the task processes of one node: one per identity and resource.

Azure throttles a VM's managed-identity requests (20 a second, 5 at once): a node running
16-32 short tasks at a time, each asking for its own tokens, is throttled (issue 27). So a
node's tasks keep their tokens in the node's shared folder, which the start task prepares::

    $AZ_BATCH_NODE_SHARED_DIR/batch-worker/tokens/     1733: anyone may make a folder in it,
                                                       nobody may list it (bootstrap/tokens.sh)
    .../tokens/<uid>/                                  0700, the task user's, made by its
                                                       first task
    .../tokens/<uid>/<key>.json                        0600, one token (``key``: a hash of
                                                       the endpoint, client id and resource)
    .../tokens/<uid>/<key>.lock                        held by the one process fetching
    .../tokens/<uid>/<key>.failed                      why its last fetch failed, and when

When the fetch fails (the endpoint down, throttling past the retries, an unknown identity),
the processes that waited for it fail the same way at once, instead of each retrying in
turn under the lock for as long again: a fetch that failed in the last
``FAILURE_MEMORY`` seconds is not tried again.

A file is used only when it is whole, for the same endpoint, identity and resource, and
valid for more than five minutes; anything else (corrupt, expired, another identity's,
unreadable) is ignored and replaced by the next fetch. A folder that is not the user's own
private directory is not used at all: the process then keeps its tokens to itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any, Dict, Iterator, NamedTuple, Optional

log = logging.getLogger(__name__)

#: The folder under ``AZ_BATCH_NODE_SHARED_DIR`` the start task makes.
FOLDER = ("batch-worker", "tokens")
#: A token is replaced when it has less than this left (azure-core's margin, in seconds).
EXPIRY_MARGIN = 300
_LONG_LIVED = 7200  # tokens living longer are refreshed at half-life (as MSAL does)
#: Seconds a failed fetch stands for the node's other processes (then one tries again).
FAILURE_MEMORY = 10.0
_FORMAT = 1


class Identity(NamedTuple):
    """What a token is for: the endpoint that issued it, the client id, the resource."""

    endpoint: str
    client_id: str
    resource: str

    def key(self) -> str:
        text = "\0".join((self.endpoint, self.client_id, self.resource))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Cached(NamedTuple):
    """A token with its expiry and the time it is due for a refresh (epoch seconds)."""

    token: str
    expires_on: int
    refresh_on: int

    @classmethod
    def new(cls, token: str, expires_on: int, now: Optional[float] = None) -> "Cached":
        now = time.time() if now is None else now
        life = expires_on - now
        if life >= _LONG_LIVED:
            return cls(token, expires_on, int(now + life / 2))
        return cls(token, expires_on, expires_on - EXPIRY_MARGIN)

    def usable(self, now: float) -> bool:
        return self.expires_on - now > EXPIRY_MARGIN

    def fresh(self, now: float) -> bool:
        return self.usable(now) and now < self.refresh_on


def shared_folder(environ) -> Optional[Path]:
    """The node's token folder (None off Batch), whether or not it exists."""
    shared = environ.get("AZ_BATCH_NODE_SHARED_DIR", "").strip()
    return Path(shared).joinpath(*FOLDER) if shared else None


class SharedTokens:
    """One user's token files on the node; :meth:`open` checks the folder first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def open(cls, root: Path) -> Optional["SharedTokens"]:
        """The user's folder under ``root`` (made if missing), or None when there is no
        usable one: ``root`` missing (no start task prepared it), or the user's folder not
        a private directory of this user (then a warning says why)."""
        if not root.is_dir():
            log.debug("no shared token cache: %s does not exist", root)
            return None
        folder = root / str(os.geteuid())
        try:
            os.mkdir(str(folder), 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            log.warning("tokens are not shared on this node: cannot make %s (%s)", folder,
                        e.strerror)
            return None
        problem = _not_private(folder)
        if problem:
            log.warning("tokens are not shared on this node: %s %s", folder, problem)
            return None
        return cls(folder)

    def read(self, identity: Identity) -> Optional[Cached]:
        """The usable token stored for ``identity``, or None (missing or not usable)."""
        path = self._path(identity, ".json")
        try:
            with open(str(path), "rb") as f:
                data = json.loads(f.read(65536))
            if data.get("format") != _FORMAT or \
                    Identity(data["endpoint"], data["client_id"], data["resource"]) != identity:
                log.debug("token cache %s is not for this identity: replaced", path.name)
                return None
            cached = Cached(str(data["token"]), int(data["expires_on"]),
                            int(data["refresh_on"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.debug("token cache %s unusable (%s): replaced", path.name, type(e).__name__)
            return None
        return cached if cached.usable(time.time()) else None

    def write(self, identity: Identity, cached: Cached) -> None:
        """Store ``cached`` for ``identity``: readers see the old file or the new one."""
        data = dict(identity._asdict(), format=_FORMAT, **cached._asdict())
        self._write_json(self._path(identity, ".json"), data)
        self.clear_failure(identity)

    def _write_json(self, path: Path, data: Dict[str, Any]) -> None:
        tmp = path.with_name(".%s.%d.%s.tmp" % (path.name, os.getpid(), os.urandom(4).hex()))
        try:
            fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(str(tmp), str(path))
        except OSError as e:
            log.warning("could not write %s (%s): the node's tasks will fetch their own "
                        "tokens", path, e.strerror)
            with contextlib.suppress(OSError):
                os.unlink(str(tmp))

    def record_failure(self, identity: Identity, kind: str, message: str) -> None:
        """Remember that the fetch for ``identity`` failed (``kind``: the error's class)."""
        self._write_json(self._path(identity, ".failed"),
                         {"at": time.time(), "kind": kind, "message": message})

    def recent_failure(self, identity: Identity) -> Optional[Dict[str, str]]:
        """The failure of a fetch in the last ``FAILURE_MEMORY`` seconds: kind and message."""
        try:
            with open(str(self._path(identity, ".failed")), "rb") as f:
                data = json.loads(f.read(65536))
            if 0 <= time.time() - float(data["at"]) < FAILURE_MEMORY:
                return {"kind": str(data["kind"]), "message": str(data["message"])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return None

    def clear_failure(self, identity: Identity) -> None:
        with contextlib.suppress(OSError):
            os.unlink(str(self._path(identity, ".failed")))

    @contextlib.contextmanager
    def lock(self, identity: Identity, wait: bool) -> Iterator[bool]:
        """Hold the identity's lock for the block: yields True once held, or (``wait``
        False) False at once when another process holds it. A lock that cannot be taken at
        all (an unwritable folder) yields True: fetching without it is still correct."""
        try:
            fd = os.open(str(self._path(identity, ".lock")), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield True
            return
        try:
            yield _flock(fd, wait)
        finally:
            os.close(fd)  # releases the lock

    def _path(self, identity: Identity, suffix: str) -> Path:
        return self.folder / (identity.key() + suffix)


def _flock(fd: int, wait: bool) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _not_private(folder: Path) -> str:
    """Why ``folder`` is not this user's private directory ("" when it is)."""
    info = os.lstat(str(folder))
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.geteuid():
        return "belongs to another user (uid %d)" % info.st_uid
    if info.st_mode & 0o077:
        return "is open to other users (mode %o)" % stat.S_IMODE(info.st_mode)
    return ""
