"""The Key Vault emulator driven by the real SecretClient (challenge flow, IMDS tokens)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError


@pytest.fixture
def vault(emulators, emulator_environ):
    return emulators.secret_client()


def test_set_get_latest_and_by_version(vault):
    first = vault.set_secret("db-password", "one")
    second = vault.set_secret("db-password", "two", content_type="text/plain", tags={"a": "b"})
    assert vault.get_secret("db-password").value == "two"
    assert vault.get_secret("db-password", first.properties.version).value == "one"
    got = vault.get_secret("db-password")
    assert got.id == second.id and got.id.startswith(vault.vault_url + "/secrets/db-password/")
    assert got.properties.content_type == "text/plain" and got.properties.tags == {"a": "b"}


def test_missing_secret(vault):
    with pytest.raises(ResourceNotFoundError) as e:
        vault.get_secret("no-such-secret")
    assert e.value.error.code == "SecretNotFound"


def test_list_pages_and_versions(emulators, vault):
    for i in range(5):
        emulators.seed_secret("paged-%d" % i, "v")
    emulators.reset_counts()
    names = [p.name for p in vault.list_properties_of_secrets(max_page_size=2)]
    assert {"paged-%d" % i for i in range(5)} <= set(names)
    assert emulators.counts("vault")["list_secrets"] >= 3
    for value in ("a", "b", "c"):
        vault.set_secret("versioned", value)
    versions = list(vault.list_properties_of_secret_versions("versioned", max_page_size=2))
    assert len(versions) == 3 and all(v.version for v in versions)


def test_update_delete_recover_purge(vault):
    vault.set_secret("lifecycle", "x")
    updated = vault.update_secret_properties("lifecycle", content_type="text/plain",
                                             tags={"t": "1"})
    assert updated.content_type == "text/plain"
    deleted = vault.begin_delete_secret("lifecycle").result()
    assert deleted.name == "lifecycle" and deleted.recovery_id.endswith("/deletedsecrets/lifecycle")
    assert vault.get_deleted_secret("lifecycle").name == "lifecycle"
    with pytest.raises(ResourceNotFoundError):
        vault.get_secret("lifecycle")
    vault.begin_recover_deleted_secret("lifecycle").result()
    assert vault.get_secret("lifecycle").value == "x"
    vault.begin_delete_secret("lifecycle").result()
    vault.purge_deleted_secret("lifecycle")
    with pytest.raises(ResourceNotFoundError):
        vault.get_deleted_secret("lifecycle")


def test_first_request_is_challenged(emulators, emulator_environ):
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()
    emulators.seed_secret("challenged", "c")
    emulators.reset_counts()
    assert emulators.secret_client().get_secret("challenged").value == "c"
    assert emulators.counts("vault") == {"get_secret": 2}  # the 401 challenge, then the read
    assert emulators.counts("identity") == {"token": 1}


def test_the_stock_secret_client_needs_the_one_documented_flag(emulators, emulator_environ):
    """docs/emulators.md says why: the SDK accepts a challenge only from a host *below* the resource's
    domain (NAME.vault.azure.net for vault.azure.net). A loopback address has no such parent
    a name resolver here knows, so ``verify_challenge_resource=False`` is the one change."""
    from azure.keyvault.secrets import SecretClient
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()
    plain = SecretClient(emulators.vault_url, emulators.credential(), retry_total=0,
                         connection_verify=emulators.ca_path)
    with pytest.raises(ValueError, match="does not match the requested domain"):
        plain.get_secret("anything")
