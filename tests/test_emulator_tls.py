"""The CA bundle in the printed environment: the emulators' CA added to the public roots.

Sourcing the env file exports ``REQUESTS_CA_BUNDLE``; a bundle holding the emulators' CA
alone would break every other HTTPS call in that shell. No test here can reach a public
server (no internet), so the public side is checked by content: every root certifi and the
system trust is in the bundle, and ``ssl`` loads all of them.
"""

from __future__ import annotations

import os
import re
import ssl

import certifi

PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _certificates(path: str) -> set:
    with open(path, encoding="ascii", errors="replace") as f:
        return {"".join(pem.split()) for pem in PEM.findall(f.read())}


def test_the_bundle_keeps_certifis_and_the_systems_roots_and_adds_the_ca(emulators):
    bundle = emulators.environment()["REQUESTS_CA_BUNDLE"]
    assert bundle != emulators.ca_path
    inside = _certificates(bundle)
    public = _certificates(certifi.where())
    assert len(public) > 100 and public <= inside
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        assert _certificates("/etc/ssl/certs/ca-certificates.crt") <= inside
    assert _certificates(emulators.ca_path) <= inside
    context = ssl.create_default_context(cafile=bundle)
    assert context.cert_store_stats()["x509_ca"] == len(inside)


def test_the_real_sdks_verify_the_emulators_with_the_bundle(emulators, emulator_environ,
                                                            emulator_filesystem):
    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient
    from azure.storage.filedatalake import DataLakeServiceClient

    assert emulator_environ["REQUESTS_CA_BUNDLE"].endswith("bundle.pem")
    credential = ManagedIdentityCredential(client_id=emulators.client_id)
    lake = DataLakeServiceClient(emulators.account_url, credential=credential, retry_total=0)
    f = lake.get_file_client(emulator_filesystem, "verified.txt")  # no connection_verify
    f.upload_data(b"ok", overwrite=True)
    assert f.download_file().readall() == b"ok"
    vault = SecretClient(emulators.vault_url, credential, verify_challenge_resource=False,
                         retry_total=0)
    emulators.seed_secret("verified", "v")
    assert vault.get_secret("verified").value == "v"
