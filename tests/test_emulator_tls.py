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


def test_emulators_starting_together_in_a_new_folder_share_one_ca(tmp_path):
    """The per-user CA of ``emulate`` is created once, under a lock: four starting at once
    all use the same certificate and key (never one's certificate beside another's key)."""
    from concurrent.futures import ThreadPoolExecutor

    from worker.emulators.tls import make_tls, user_ca_dir, write_bundle

    folder = user_ca_dir({"XDG_CACHE_HOME": str(tmp_path)})
    assert folder == str(tmp_path / "batch-worker" / "emulators")

    def start(_):
        tls = make_tls(folder, persist=True)
        return open(tls.ca_path).read(), write_bundle(folder, tls.ca_path)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(start, range(4)))
    assert len({ca for ca, _ in results}) == 1
    assert {bundle for _, bundle in results} == {os.path.join(folder, "bundle.pem")}
    assert sorted(os.listdir(folder)) == [".lock", "bundle.pem", "ca-key.pem", "ca.pem"]
    # the kept key signs for the kept certificate: a server made from them is trusted
    tls = make_tls(folder, persist=True)
    assert _certificates(tls.ca_path) <= _certificates(os.path.join(folder, "bundle.pem"))
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with tls.context.wrap_socket(conn, server_side=True):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    client = ssl.create_default_context(cafile=os.path.join(folder, "bundle.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            client.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass
    thread.join(10)
    server.close()
