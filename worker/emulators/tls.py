"""The throwaway certificate authority and the server TLS context.

A fresh CA (trustme) signs one server certificate for ``127.0.0.1``, ``localhost`` and
``::1``. The CA certificate is written to ``ca.pem`` (for ``connection_verify=``), and
``bundle.pem`` holds it together with the public roots a shell already trusts (certifi's
and the system's): ``REQUESTS_CA_BUNDLE`` points at the bundle, so exporting it breaks no
other HTTPS call in that shell. A kept CA (``persist``: under ``--data``, or the per-user
folder of :func:`user_ca_dir` that ``emulate`` uses) is reused by every run, so a restarted
emulator still matches the bundle a client already has, and the bundle outlives the
emulators: a shell that loaded their env file keeps working after they stop.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional

_HOSTS = ("127.0.0.1", "localhost", "::1")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
# Where Linux distributions and macOS keep the system's roots, after OpenSSL's own idea.
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                   "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem")


class Tls(NamedTuple):
    """The CA bundle path clients trust and the server-side SSL context."""

    ca_path: str
    context: ssl.SSLContext


def user_ca_dir(environ: Optional[Mapping[str, str]] = None) -> str:
    """Where ``emulate`` keeps its CA and bundle between runs, per user:
    ``$XDG_CACHE_HOME/batch-worker/emulators`` (``~/.cache/...``)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "batch-worker", "emulators")


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    """One process at a time creates a kept CA: two emulators starting together in a new
    folder must not leave one's certificate beside the other's key."""
    import fcntl  # POSIX, as everything here

    with open(os.path.join(directory, ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _load_or_create_ca(directory: str, persist: bool):
    import trustme  # lazy: only emulators need it, and it pulls in cryptography

    cert_path = os.path.join(directory, "ca.pem")
    key_path = os.path.join(directory, "ca-key.pem")
    if persist and os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as c, open(key_path, "rb") as k:
            return trustme.CA.from_pem(c.read(), k.read())
    ca = trustme.CA(organization_name="batch-worker emulators")
    if persist:
        _write_private(key_path, ca.private_key_pem.bytes())
    ca.cert_pem.write_to_path(cert_path)
    return ca


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # an older file's mode, too


def make_tls(directory: str, persist: bool = False) -> Tls:
    """Create (or, with ``persist``, reuse) the CA in ``directory`` and a server context."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with _locked(directory) if persist else contextlib.nullcontext():
        ca = _load_or_create_ca(directory, persist)
    leaf = ca.issue_cert(*_HOSTS)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    leaf.configure_cert(context)
    return Tls(os.path.join(directory, "ca.pem"), context)


def client_context(ca_path: Optional[str]) -> ssl.SSLContext:
    """An SSL context trusting only ``ca_path``: for raw clients (replays, benchmarks)."""
    return ssl.create_default_context(cafile=ca_path)


def public_bundles() -> List[str]:
    """The root bundles a client trusts without us: certifi's, then the system's."""
    found = []
    try:
        import certifi  # requests' own roots; present wherever the Azure SDKs are

        found.append(certifi.where())
    except ImportError:
        pass
    paths = ssl.get_default_verify_paths()
    for path in (paths.cafile, paths.openssl_cafile) + _SYSTEM_BUNDLES:
        if path and os.path.isfile(path) and os.path.realpath(path) not in map(
                os.path.realpath, found):
            found.append(path)
    return found


def write_bundle(directory: str, ca_path: str) -> str:
    """Write ``bundle.pem``: the public roots (each once) and the emulators' CA; its path."""
    certificates: Dict[str, str] = {}  # whitespace-free text -> PEM, in first-seen order
    for path in public_bundles() + [ca_path]:
        with open(path, encoding="ascii", errors="replace") as f:
            for pem in _PEM.findall(f.read()):
                certificates.setdefault("".join(pem.split()), pem)
    bundle = os.path.join(directory, "bundle.pem")
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=directory)  # one per writer
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("\n".join(certificates.values()) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, bundle)  # a client never reads half a bundle
    return bundle
