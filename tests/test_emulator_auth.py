"""Real authorization: identities, rights, audiences, signatures and expiry."""

from __future__ import annotations

import time

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.storage.filedatalake import DataLakeServiceClient


class FixedToken:
    """A credential that always presents one token: how a test sends a wrong one."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def _lake(emulators, credential):
    return DataLakeServiceClient(emulators.account_url, credential=credential, retry_total=0,
                                 connection_verify=emulators.ca_path)


def _vault(emulators, credential):
    return SecretClient(emulators.vault_url, credential, verify_challenge_resource=False,
                        retry_total=0, connection_verify=emulators.ca_path)


def test_unknown_identity_gets_no_token(emulators, emulator_environ):
    credential = ManagedIdentityCredential(client_id="00000000-dead-beef-0000-000000000000",
                                           retry_total=0)
    with pytest.raises(CredentialUnavailableError):
        credential.get_token("https://storage.azure.com/.default")
    assert emulators.counts("identity") == {"token": 1}


def test_token_has_requested_audience_and_expiry(emulators, emulator_environ):
    token = emulators.credential().get_token("https://vault.azure.net/.default")
    assert token.expires_on > time.time() + 3600
    claims = emulators.set.lake_app.issuer.verify(token.token, "https://vault.azure.net")
    assert claims.client_id == emulators.client_id


def test_reader_can_read_but_not_write(emulators, emulator_environ, emulator_filesystem):
    emulators.seed_file(emulator_filesystem, "in/data.txt", b"hello")
    emulators.seed_secret("reader-visible", "s")
    fs = emulators.service_client(emulators.reader_client_id).get_file_system_client(
        emulator_filesystem)
    assert fs.get_file_client("in/data.txt").download_file().readall() == b"hello"
    assert [p.name for p in fs.get_paths()] == ["in", "in/data.txt"]
    with pytest.raises(HttpResponseError) as e:
        fs.get_file_client("out.txt").upload_data(b"x", overwrite=True)
    assert e.value.status_code == 403 and e.value.error_code == "AuthorizationPermissionMismatch"
    vault = emulators.secret_client(emulators.reader_client_id)
    assert vault.get_secret("reader-visible").value == "s"
    with pytest.raises(HttpResponseError) as e:
        vault.set_secret("reader-visible", "changed")
    assert e.value.status_code == 403 and e.value.error.code == "Forbidden"


def test_wrong_audience_is_refused(emulators, emulator_environ, emulator_filesystem):
    vault_token = emulators.credential().get_token("https://vault.azure.net/.default").token
    storage_token = emulators.credential().get_token("https://storage.azure.com/.default").token
    with pytest.raises(ClientAuthenticationError) as e:
        _lake(emulators, FixedToken(vault_token)).get_file_system_client(
            emulator_filesystem).get_file_system_properties()
    assert e.value.error_code == "InvalidAuthenticationInfo"
    with pytest.raises(ClientAuthenticationError):
        _vault(emulators, FixedToken(storage_token)).get_secret("anything")


def test_bad_signature_and_expired_tokens_are_refused(emulators, emulator_environ,
                                                      emulator_filesystem):
    good = emulators.credential().get_token("https://storage.azure.com/.default").token
    header, claims, signature = good.split(".")
    forged = ".".join([header, claims, signature[::-1]])
    expired, _ = emulators.set.lake_app.issuer.issue(emulators.client_id,
                                                     "https://storage.azure.com", lifetime=-10)
    for token in (forged, expired):
        with pytest.raises(ClientAuthenticationError):
            _lake(emulators, FixedToken(token)).get_file_system_client(
                emulator_filesystem).get_file_system_properties()


def test_a_token_not_yet_valid_is_refused(emulators, emulator_environ, emulator_filesystem):
    issuer = emulators.set.lake_app.issuer
    future = int(time.time()) + 3600
    storage, _ = issuer.issue(emulators.client_id, "https://storage.azure.com",
                              not_before=future)
    with pytest.raises(ClientAuthenticationError) as e:
        _lake(emulators, FixedToken(storage)).get_file_system_client(
            emulator_filesystem).get_file_system_properties()
    assert e.value.status_code == 401 and e.value.error_code == "InvalidAuthenticationInfo"
    vault_token, _ = issuer.issue(emulators.client_id, "https://vault.azure.net",
                                  not_before=future)
    with pytest.raises(ClientAuthenticationError) as e:
        _vault(emulators, FixedToken(vault_token)).get_secret("anything")
    assert e.value.status_code == 401 and "not yet valid" in e.value.message
    now, _ = issuer.issue(emulators.client_id, "https://storage.azure.com",
                          not_before=int(time.time()))
    _lake(emulators, FixedToken(now)).get_file_system_client(
        emulator_filesystem).get_file_system_properties()  # valid from now: accepted


def test_prefix_grants(emulator_environ, monkeypatch):
    from worker.emulators import EmulatorSet, parse_config
    from worker.emulators.handle import EmulatorHandle

    config = parse_config({"identities": [
        {"client_id": "prefix-user", "lake": [
            {"filesystem": "data", "prefix": "inputs", "access": "r"},
            {"filesystem": "data", "prefix": "outputs", "access": "rw"}]}]})
    with EmulatorSet(config) as raw:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", raw.identity_url)
        emulators = EmulatorHandle(raw)
        emulators.seed_file("data", "inputs/a.txt", b"a")
        fs = emulators.service_client("prefix-user").get_file_system_client("data")
        assert fs.get_file_client("inputs/a.txt").download_file().readall() == b"a"
        fs.get_file_client("outputs/b.txt").upload_data(b"b", overwrite=True)
        with pytest.raises(HttpResponseError) as e:
            fs.get_file_client("inputs/c.txt").upload_data(b"c", overwrite=True)
        assert e.value.status_code == 403
        with pytest.raises(HttpResponseError):
            fs.get_file_client("elsewhere.txt").download_file()
