"""The throwaway certificate authority and the server TLS context.

A fresh CA (trustme) signs one server certificate for ``127.0.0.1``, ``localhost`` and
``::1``. The CA certificate is written to ``ca.pem`` (for ``connection_verify=``), and
``bundle.pem`` holds it together with the public roots a shell already trusts (certifi's
and the system's): ``REQUESTS_CA_BUNDLE`` points at the bundle, so exporting it breaks no
other HTTPS call in that shell. With a state directory the CA and its key are kept there,
so a restarted emulator still matches the bundle a client already has.
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Dict, List, NamedTuple, Optional

_HOSTS = ("127.0.0.1", "localhost", "::1")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
# Where Linux distributions and macOS keep the system's roots, after OpenSSL's own idea.
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                   "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem")


class Tls(NamedTuple):
    """The CA bundle path clients trust and the server-side SSL context."""

    ca_path: str
    context: ssl.SSLContext


def _load_or_create_ca(directory: str, persist: bool):
    import trustme  # lazy: only emulators need it, and it pulls in cryptography

    cert_path = os.path.join(directory, "ca.pem")
    key_path = os.path.join(directory, "ca-key.pem")
    if persist and os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as c, open(key_path, "rb") as k:
            return trustme.CA.from_pem(c.read(), k.read())
    ca = trustme.CA(organization_name="batch-worker emulators")
    ca.cert_pem.write_to_path(cert_path)
    if persist:
        ca.private_key_pem.write_to_path(key_path)
        os.chmod(key_path, 0o600)
    return ca


def make_tls(directory: str, persist: bool = False) -> Tls:
    """Create (or, with ``persist``, reuse) the CA in ``directory`` and a server context."""
    os.makedirs(directory, exist_ok=True)
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
    tmp = bundle + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("\n".join(certificates.values()) + "\n")
    os.replace(tmp, bundle)
    return bundle
