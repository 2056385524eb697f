"""Shared Key and SAS on the lake emulator: the account key signs both, and each SAS grants
its permissions on its resource only (``worker/emulators/sas.py``, ``shared_key.py``)."""

from __future__ import annotations

import datetime
import os

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    AccountSasPermissions,
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)

from worker.emulators import sas


def _in(hours: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)


@pytest.fixture
def account(emulators, emulator_filesystem):
    return emulators.set.config.account, emulators.account_key, emulator_filesystem


def _blob(emulators, fs, path, token, **options):
    options.setdefault("retry_total", 0)
    return BlobClient.from_blob_url("%s/%s/%s?%s" % (emulators.account_url, fs, path, token),
                                    connection_verify=emulators.ca_path, **options)


def _denied(call, code):
    with pytest.raises(HttpResponseError) as e:
        call()
    assert e.value.status_code == 403 and e.value.error_code == code, e.value.message
    return e.value


def test_an_upload_url_from_sign_takes_put_blob_and_blocks(emulators, account):
    """What the local Batch service hands out for an application package."""
    name, key, fs = account
    token = sas.sign(name, key, fs, "apps/tool/1.0.zip", permissions="cw")
    small = _blob(emulators, fs, "apps/tool/1.0.zip", token)
    small.upload_blob(b"PK small", overwrite=True)
    assert emulators.read_file(fs, "apps/tool/1.0.zip") == b"PK small"
    big = _blob(emulators, fs, "apps/tool/1.0.zip", token, max_single_put_size=1024,
                max_block_size=1024)
    data = os.urandom(4000)
    before = emulators.counts("lake").get("put_block", 0)
    big.upload_blob(data, overwrite=True)
    assert emulators.counts("lake")["put_block"] - before == 4
    assert emulators.read_file(fs, "apps/tool/1.0.zip") == data
    _denied(lambda: small.download_blob().readall(), "AuthorizationPermissionMismatch")
    other = _blob(emulators, fs, "apps/tool/2.0.zip", token)  # bound to its own blob
    _denied(lambda: other.upload_blob(b"x"), "AuthenticationFailed")


def test_the_blob_sdk_s_service_sas(emulators, account):
    name, key, fs = account
    emulators.seed_file(fs, "in/data.csv", b"a,b\n")
    read = generate_blob_sas(name, fs, "in/data.csv", account_key=key,
                             permission=BlobSasPermissions(read=True), expiry=_in(1))
    blob = _blob(emulators, fs, "in/data.csv", read)
    assert blob.download_blob().readall() == b"a,b\n"
    _denied(lambda: blob.upload_blob(b"no", overwrite=True), "AuthorizationPermissionMismatch")
    listing = generate_container_sas(name, fs, account_key=key, expiry=_in(1),
                                     permission=ContainerSasPermissions(read=True, list=True))
    container = ContainerClient.from_container_url(
        "%s/%s?%s" % (emulators.account_url, fs, listing), retry_total=0,
        connection_verify=emulators.ca_path)
    assert [b.name for b in container.list_blobs()] == ["in", "in/data.csv"]
    _denied(lambda: container.delete_blob("in/data.csv"), "AuthorizationPermissionMismatch")
    assert container.get_account_information()["is_hns_enabled"] is True  # any SAS may ask
    deleting = generate_container_sas(name, fs, account_key=key, expiry=_in(1),
                                      permission=ContainerSasPermissions(delete=True))
    batch = ContainerClient.from_container_url(
        "%s/%s?%s" % (emulators.account_url, fs, deleting), retry_total=0,
        connection_verify=emulators.ca_path)
    assert [r.status_code for r in batch.delete_blobs("in/data.csv")] == [202]
    assert not emulators.exists(fs, "in/data.csv")


def test_the_account_sas(emulators, account):
    name, key, fs = account
    token = generate_account_sas(
        name, key, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
        expiry=_in(1))
    service = BlobServiceClient(emulators.account_url, credential=token, retry_total=0,
                                connection_verify=emulators.ca_path)
    created = service.create_container("sas-made")
    try:
        created.upload_blob("x.txt", b"x")
        assert "sas-made" in [c.name for c in service.list_containers()]
        assert [b.name for b in created.list_blobs()] == ["x.txt"]
    finally:
        created.delete_container()
    objects_only = generate_account_sas(name, key, ResourceTypes(object=True),
                                        AccountSasPermissions(read=True, list=True),
                                        expiry=_in(1))
    limited = BlobServiceClient(emulators.account_url, credential=objects_only, retry_total=0,
                                connection_verify=emulators.ca_path)
    _denied(lambda: list(limited.list_containers()), "AuthorizationResourceTypeMismatch")


def test_expired_and_tampered_tokens_are_refused(emulators, account):
    name, key, fs = account
    emulators.seed_file(fs, "f.txt", b"f")
    expired = sas.sign(name, key, fs, "f.txt", expiry=_in(-1))
    _denied(lambda: _blob(emulators, fs, "f.txt", expired).download_blob(),
            "AuthenticationFailed")
    later = sas.sign(name, key, fs, "f.txt", start=_in(1), expiry=_in(2))
    _denied(lambda: _blob(emulators, fs, "f.txt", later).download_blob(), "AuthenticationFailed")
    good = sas.sign(name, key, fs, "f.txt", permissions="r")
    tampered = good.replace("sp=r", "sp=rw")
    error = _denied(lambda: _blob(emulators, fs, "f.txt", tampered).upload_blob(
        b"x", overwrite=True), "AuthenticationFailed")
    assert key not in str(error)
    other_key = sas.sign(name, "b3RoZXIga2V5", fs, "f.txt")
    _denied(lambda: _blob(emulators, fs, "f.txt", other_key).download_blob(),
            "AuthenticationFailed")


def test_the_datalake_sdk_with_the_account_key_and_with_sas(emulators, account):
    """DFS requests (create, append, flush, rename, list) signed with Shared Key or a SAS."""
    from azure.storage.filedatalake import (
        DataLakeServiceClient,
        DirectorySasPermissions,
        FileSystemSasPermissions,
        generate_directory_sas,
        generate_file_system_sas,
    )

    name, key, fs = account
    keyed = DataLakeServiceClient(emulators.account_url, retry_total=0,
                                  credential={"account_name": name, "account_key": key},
                                  connection_verify=emulators.ca_path)
    files = keyed.get_file_system_client(fs)
    files.get_file_client("k/a.txt").upload_data(b"keyed", overwrite=True)
    files.get_file_client("k/a.txt").rename_file("%s/k/b.txt" % fs)
    assert [p.name for p in files.get_paths("k")] == ["k/b.txt"]
    token = generate_file_system_sas(name, fs, key, expiry=_in(1), permission=(
        FileSystemSasPermissions(read=True, write=True, list=True, delete=True)))
    with_sas = DataLakeServiceClient(emulators.account_url, credential=token, retry_total=0,
                                     connection_verify=emulators.ca_path)
    client = with_sas.get_file_system_client(fs).get_file_client("s/c.txt")
    client.upload_data(b"signed", overwrite=True)
    assert client.download_file().readall() == b"signed"
    directory = generate_directory_sas(name, fs, "s", key, expiry=_in(1),
                                       permission=DirectorySasPermissions(read=True))
    scoped = DataLakeServiceClient(emulators.account_url, credential=directory,
                                   retry_total=0, connection_verify=emulators.ca_path)
    inside = scoped.get_file_system_client(fs).get_file_client("s/c.txt")
    assert inside.download_file().readall() == b"signed"
    outside = scoped.get_file_system_client(fs).get_file_client("k/b.txt")
    _denied(lambda: outside.download_file().readall(), "AuthenticationFailed")


def test_copy_with_a_source_sas(emulators, account):
    name, key, fs = account
    emulators.seed_file(fs, "src.bin", b"source")
    source = "%s/%s/src.bin?%s" % (emulators.account_url, fs, sas.sign(name, key, fs, "src.bin"))
    target = _blob(emulators, fs, "dst.bin", sas.sign(name, key, fs, "dst.bin",
                                                       permissions="cw"))
    assert target.start_copy_from_url(source)["copy_status"] == "success"
    assert emulators.read_file(fs, "dst.bin") == b"source"
    no_read = "%s/%s/src.bin?%s" % (emulators.account_url, fs,
                                    sas.sign(name, key, fs, "src.bin", permissions="w"))
    _denied(lambda: target.start_copy_from_url(no_read), "AuthorizationPermissionMismatch")


def test_shared_key_requests_carry_a_recent_date(emulators, account):
    import http.client
    from urllib.parse import urlsplit

    from worker.emulators.tls import client_context

    name, key, fs = account
    conn = http.client.HTTPSConnection(urlsplit(emulators.account_url).netloc,
                                       context=client_context(emulators.ca_path), timeout=10)
    conn.request("GET", "/%s/%s?restype=container" % (name, fs), headers={
        "x-ms-date": "Mon, 01 Jan 2024 00:00:00 GMT", "x-ms-version": "2021-08-06",
        "Authorization": "SharedKey %s:c2ln" % name})
    response = conn.getresponse()
    assert response.status == 403
    assert response.getheader("x-ms-error-code") == "AuthenticationFailed"
    assert b"more than 15 minutes off" in response.read()
    conn.close()


def test_verify_reads_what_sign_writes():
    token = sas.sign("acct", "a2V5", "fs", "dir/file.bin", permissions="rcw")
    query = dict(pair.split("=", 1) for pair in token.split("&"))
    from urllib.parse import unquote

    query = {k: unquote(v) for k, v in query.items()}
    grant = sas.verify(query, "acct", "a2V5", "fs", "dir/file.bin")
    assert grant.kind == "service" and grant.permissions == "rcw" and grant.resource == "b"
    assert grant.covers("fs", "dir/file.bin") and not grant.covers("fs", "dir/other.bin")
    with pytest.raises(sas.SasError) as e:
        sas.verify(query, "acct", "a2V5", "fs", "dir/other.bin")
    assert e.value.code == "AuthenticationFailed"


def test_older_versions_a_source_address_and_the_account_sas_of_sign_account(emulators,
                                                                             account):
    name, key, fs = account
    emulators.seed_file(fs, "v.txt", b"versions")
    for version in ("2015-04-05", "2018-11-09", "2020-12-06", sas.VERSION):
        token = sas.sign(name, key, fs, "v.txt", version=version)
        assert _blob(emulators, fs, "v.txt", token).download_blob().readall() == b"versions"
    here = sas.sign_account(name, key, permissions="r", resource_types="o")
    assert _blob(emulators, fs, "v.txt", here).download_blob().readall() == b"versions"
    query = {k: v for k, v in (p.split("=", 1) for p in sas.sign(name, key, fs).split("&"))}
    from urllib.parse import unquote

    query = {k: unquote(v) for k, v in query.items()}
    assert sas.verify(query, name, key, fs, "", client_ip="127.0.0.1").resource == "c"
    fields = dict(query, sip="10.0.0.1-10.0.0.9")
    fields["sig"] = sas.signature(key, sas.service_string(fields, "/blob/%s/%s" % (name, fs)))
    with pytest.raises(sas.SasError) as e:
        sas.verify(fields, name, key, fs, "", client_ip="127.0.0.1")
    assert e.value.code == "AuthorizationSourceIPMismatch"
    assert sas.verify(fields, name, key, fs, "", client_ip="10.0.0.5").kind == "service"
